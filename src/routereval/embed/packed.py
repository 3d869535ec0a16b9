"""A BERT encoder run on packed prompts: the tokens of a batch end to end, with no padding.

Hugging Face's ``BertModel`` pads a batch to its longest prompt and runs every linear layer
on the padding too; on a CPU, where the linear layers are nearly all the work, that can be
a large share of the cost of a batch of short prompts of mixed length. :class:`PackedBert` takes the same
weights and runs each linear layer once on the (T, d) matrix of the batch's real tokens
(one large matrix product instead of several small ones: faster per token as well), and
attention per prompt. It computes the same function as ``BertModel`` followed by mean
pooling (within float rounding: about 1e-7, like a change of batch size); on short prompts
``bench/bench_serve.py`` measured 1.3x sentence-transformers' prompts/s (which sorts a batch by
length and pads each group of 32).

Imported lazily (torch) by :mod:`routereval.serve.encoder`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PackedLayer(nn.Module):
    """One post-norm BERT layer on packed tokens (query, key and value in one linear layer)."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.heads, self.hidden = heads, hidden
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, intermediate)
        self.ffn_out = nn.Linear(intermediate, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, slots: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(T, d) hidden states of the packed prompts.

        ``slots`` (T,) places each token in an (n * width) padded grid for attention only,
        ``mask`` (n, 1, 1, width) marks the real tokens of each prompt's row of that grid.
        """
        n, width = mask.shape[0], mask.shape[-1]
        h, d = self.heads, self.hidden // self.heads
        qkv = self.qkv(x)
        grid = qkv.new_zeros(n * width, 3 * self.hidden).index_copy_(0, slots, qkv)
        q, k, v = grid.view(n, width, 3, h, d).permute(2, 0, 3, 1, 4)  # each (n, heads, width, d)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # a prompt attends to its own tokens
        attended = attended.transpose(1, 2).reshape(n * width, self.hidden).index_select(0, slots)
        x = self.norm1(self.attn_out(attended) + x)
        return self.norm2(self.ffn_out(F.gelu(self.ffn_in(x))) + x)


class PackedBert(nn.Module):
    """BERT (as in sentence-transformers' MiniLM) with mean pooling, over packed prompts.

    Build it from a loaded Hugging Face ``BertModel`` with :meth:`from_hf`; the embedding
    layer is that model's own module, the transformer layers copy its weights.
    """

    def __init__(self, embeddings: nn.Module, layers: Sequence[PackedLayer]) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.layers = nn.ModuleList(layers)

    @classmethod
    def from_hf(cls, bert: nn.Module) -> "PackedBert":
        """The packed twin of a ``transformers.BertModel`` (absolute positions, GELU, post-norm)."""
        cfg = bert.config
        if getattr(cfg, "position_embedding_type", "absolute") != "absolute" or cfg.hidden_act != "gelu":
            raise ValueError("PackedBert supports BERT with absolute positions and GELU only")
        layers = []
        for src in bert.encoder.layer:
            layer = PackedLayer(cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, cfg.layer_norm_eps)
            a = src.attention
            with torch.no_grad():
                layer.qkv.weight.copy_(torch.cat([a.self.query.weight, a.self.key.weight, a.self.value.weight]))
                layer.qkv.bias.copy_(torch.cat([a.self.query.bias, a.self.key.bias, a.self.value.bias]))
                for dst, s in ((layer.attn_out, a.output.dense), (layer.norm1, a.output.LayerNorm),
                               (layer.ffn_in, src.intermediate.dense), (layer.ffn_out, src.output.dense),
                               (layer.norm2, src.output.LayerNorm)):
                    dst.weight.copy_(s.weight)
                    dst.bias.copy_(s.bias)
            layers.append(layer)
        return cls(bert.embeddings, layers).eval()

    def forward(self, token_ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """(n, d) L2-normalised mean-pooled embeddings of n tokenised prompts (each non-empty)."""
        lengths = torch.tensor([len(ids) for ids in token_ids])
        n, width = len(lengths), int(lengths.max())
        ids = torch.tensor([t for seq in token_ids for t in seq], dtype=torch.long).unsqueeze(0)
        prompt = torch.repeat_interleave(torch.arange(n), lengths)  # (T,) the prompt of each token
        positions = torch.arange(ids.shape[1]) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
        slots = prompt * width + positions
        mask = (torch.arange(width) < lengths.unsqueeze(1)).view(n, 1, 1, width)
        x = self.embeddings(input_ids=ids, position_ids=positions.unsqueeze(0), token_type_ids=torch.zeros_like(ids))[0]
        for layer in self.layers:
            x = layer(x, slots, mask)
        x = x.float()  # under bf16 autocast the layers' output is bf16; pool in fp32
        pooled = torch.zeros(n, x.shape[1], dtype=x.dtype).index_add_(0, prompt, x)
        pooled /= lengths.to(x.dtype).unsqueeze(1)
        return F.normalize(pooled, p=2, dim=1)
