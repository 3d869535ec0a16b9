"""Study directories a report embeds: the output of ``routereval scaling`` and ``routereval coldstart``.

The contract with those commands: the directory holds ``summary.md`` (Markdown), plot files
``*.png`` and/or ``*.svg`` (one figure may come in both formats: same stem) and data files
``*.csv``. A report includes the summary and the plots; it never reads anything else there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from routereval.errors import InputError, ParameterError
from routereval.validate import as_path, option

STUDY_TITLES = {"scaling": "Scaling study", "coldstart": "Cold-start study"}
PLOT_SUFFIXES = (".png", ".svg")
# the data file each command always writes (first): it tells a scaling study from a cold-start one (both have
# summary.md), and a directory holding it is a study its command may write over
STUDY_MARKERS = {"scaling": "curves.csv", "coldstart": "coldstart.csv"}


def check_study_target(out: str | Path, kind: str) -> Path:
    """``out`` as a Path, refused (one line) unless it is missing, empty (hidden files aside: an interrupted
    write's temporaries) or an earlier ``routereval {kind}`` study's directory."""
    out = as_path(out, option("out"))
    marker = STUDY_MARKERS[kind]
    if out.exists() and not out.is_dir():
        raise InputError(f"{option('out')} {out}: exists and is not a directory")
    if out.is_dir() and not (out / marker).is_file() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise InputError(f"{option('out')} {out}: a non-empty directory that is not a {STUDY_TITLES[kind].lower()} "
                         f"(no {marker}); give a new or empty directory, or an earlier `routereval {kind}` study's "
                         "to replace")
    return out


@dataclass
class Study:
    """One study directory: ``summary`` the text of its summary.md, ``plots`` stem -> {"png"|"svg": path}
    (sorted by stem), ``data`` its CSV files (sorted)."""

    kind: str
    path: Path
    summary: str
    plots: dict[str, dict[str, Path]] = field(default_factory=dict)
    data: list[Path] = field(default_factory=list)
    label: str = ""  # set when a report holds several studies of one kind: tells them apart
    anchor: str = ""  # the report's HTML id of this study (unique in the report)

    @property
    def title(self) -> str:
        base = STUDY_TITLES.get(self.kind, self.kind)
        return f"{base} ({self.label})" if self.label else base


def load_studies(paths_by_kind: dict[str, list[str | Path]]) -> list[Study]:
    """Every study directory given, by kind (:func:`load_study`), in order; several of one kind are labelled by
    their directory (the path as given where two share a name), and every study gets a unique HTML anchor."""
    out: list[Study] = []
    for kind, paths in paths_by_kind.items():
        studies = [load_study(p, kind=kind) for p in paths]
        where = [s.path.resolve() for s in studies]
        if len(set(where)) < len(where):
            twice = next(p for p in where if where.count(p) > 1)
            raise ParameterError(f"--{kind} {twice}: given twice; give each study directory once")
        names = [p.name for p in where]  # resolved: '.' is named by its directory
        for i, s in enumerate(studies):
            if len(studies) > 1:
                s.label = names[i] if names.count(names[i]) == 1 else str(s.path)
            s.anchor = f"study-{kind}" + (f"-{i + 1}" if len(studies) > 1 else "")
        out += studies
    return out


def load_study(path: str | Path, *, kind: str) -> Study:
    """Read the study directory ``path`` (``kind``: ``scaling`` or ``coldstart``, the option's name).

    Raises :class:`~routereval.errors.InputError` when ``path`` is not a directory, has no
    ``summary.md``, is not the kind's output (no ``curves.csv``, ``coldstart.csv``) or has a
    summary that is not UTF-8 text.
    """
    p = Path(path)
    what = f"--{kind} {p}"
    if not p.is_dir():
        raise InputError(f"{what}: not a directory (expected the output directory of `routereval {kind}`: "
                         f"summary.md and *.png/*.svg plots)")
    summary_path = p / "summary.md"
    if not summary_path.is_file():
        raise InputError(f"{what}: no summary.md (expected the output directory of `routereval {kind}`)")
    marker = STUDY_MARKERS[kind]
    if not (p / marker).is_file():
        other = [k for k, m in STUDY_MARKERS.items() if k != kind and (p / m).is_file()]
        hint = f"; it is a `routereval {other[0]}` study: pass it as --{other[0]}" if other else ""
        raise InputError(f"{what}: no {marker}, so not the output directory of `routereval {kind}`{hint}")
    try:
        summary = summary_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{summary_path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    plots: dict[str, dict[str, Path]] = {}
    for f in sorted(p.iterdir()):
        if f.is_file() and f.suffix.lower() in PLOT_SUFFIXES and not f.name.startswith((".", "_")):
            plots.setdefault(f.stem, {})[f.suffix.lower()[1:]] = f
    data = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() == ".csv" and not f.name.startswith("."))
    return Study(kind, p, summary, plots, data)
