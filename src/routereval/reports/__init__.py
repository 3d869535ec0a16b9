"""Reports of a sweep's results store: the paper's tables in md, tex, html, csv and json."""
