"""CGh: the user's history alone in the encoder, each candidate in the decoder.

CG and CGc put history and candidate in one encoder prompt, so the whole
history goes through the encoder once per candidate. CGh splits the prompt:

* encoder input: the history part of the template (``history_prompts``: prefix,
  history articles, ".") — it depends on the user only, so it is encoded once
  per distinct history, however many candidates and impressions share it;
* each article: its candidate fields (title, ...) through the same encoder,
  mean-pooled and projected to one vector — once per article;
* decoder input, two positions: the start token, then the candidate vector plus
  learned embeddings of the pair's time features (template d: the candidate's
  age at the impression, and its publish time relative to the newest history
  article, both in the bucketing of template d's phrases).

CGh-f (``model.features`` set): the candidate position also receives the pair's
row of the feature table (``recsys24 features``: popularity around the
impression, the user's share of the candidate's category, ...), each feature a
quantile code (:mod:`recsys24.model_inputs.feature_codes`, fitted on the train
split and kept in the model folder's spec) with its own learned embedding, summed;
with ``model.feature_values`` also each feature's rank-gauss value through one
linear map.

score = head(decoder state at the candidate position), a logit; NLL is binary
cross-entropy, as in CGc, and the loss is the same (1 − λ)·NLL + λ·BPR. With
``model.inview_layers`` the decoder states of one impression's candidates first
go through that many transformer layers in which they attend to each other (no
position: the in-view order does not matter), as the contest winner's in-view
transformer did; ``loss.listwise`` makes the NLL a softmax over the impression's
candidates at its clicks.

Two scoring paths give the same scores (tested to 1e-4 in fp32):
``forward`` runs the Hugging Face encoder and decoder as is (training,
validation, ``--reference`` scoring); :meth:`CGh.enable_fast_scoring`
switches ``score`` to :mod:`recsys24.models.prompt.cached_decoder`, which keeps the
cross-attention keys/values and the start position per history and each
article's vector per run, so a candidate costs one decoder position.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import MT5Model

from recsys24.errors import Recsys24Error
from recsys24.model_inputs.batches import HistoryBatch
from recsys24.model_inputs.feature_codes import FeatureEncoding, feature_codes
from recsys24.models.contract import ModelSpec, Output, TrainFit
from recsys24.models.loss import listwise_nll
from recsys24.models.prompt.base import PromptModel
from recsys24.models.scoring import ScoringDefaults
from recsys24.progress import log
from recsys24.prompts.templates import NUM_AGE_BUCKETS


class CandidateHead(nn.Module):
    """Article projection, time-feature and feature-code embeddings, the in-view layers and the d_model → 1
    score layer."""

    def __init__(self, d_model: int, num_features: int = 0, buckets: int = 0, feature_values: bool = False,
                 inview_layers: int = 0):
        super().__init__()
        phrases = 2 * NUM_AGE_BUCKETS + 1
        self.article = nn.Linear(d_model, d_model)
        self.age = nn.Embedding(phrases, d_model)  # candidate age at the impression
        self.gap = nn.Embedding(phrases, d_model)  # candidate published after/before the newest history article
        nn.init.normal_(self.age.weight, std=0.1)
        nn.init.normal_(self.gap.weight, std=0.1)
        self.features = None
        if num_features:
            # one table for all features: feature j's code c is row j * (buckets + 1) + c; the bag sums a pair's rows
            self.features = nn.EmbeddingBag(num_features * (buckets + 1), d_model, mode="sum")
            nn.init.normal_(self.features.weight, std=0.1 / num_features ** 0.5)
            self.register_buffer("feature_rows", torch.arange(num_features) * (buckets + 1), persistent=False)
        self.values = nn.Linear(num_features, d_model, bias=False) if feature_values and num_features else None
        if self.values is not None:
            nn.init.normal_(self.values.weight, std=0.1 / num_features ** 0.5)
        self.inview = None
        if inview_layers:
            layer = nn.TransformerEncoderLayer(d_model, nhead=max(1, min(8, d_model // 16)), dim_feedforward=2 * d_model,
                                               dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            self.inview = nn.TransformerEncoder(layer, inview_layers, enable_nested_tensor=False)
        self.score = nn.Linear(d_model, 1)


def padded_rows(x: torch.Tensor, group: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``x`` [N, d] of sorted groups as [num_groups, C_max, d] and the mask of real rows;
    ``out[mask]`` gives ``x`` back in its order."""
    counts = torch.bincount(group, minlength=num_groups)
    col = torch.arange(len(group), device=group.device) - (torch.cumsum(counts, 0) - counts)[group]
    out = x.new_zeros(num_groups, int(counts.max()) if len(group) else 0, x.shape[-1])
    mask = torch.zeros(out.shape[:2], dtype=torch.bool, device=x.device)
    out[group, col] = x
    mask[group, col] = True
    return out, mask


class CGh(PromptModel):
    name = "cgh"
    backbone_class = MT5Model
    # A candidate costs one decoder position, so batches can be large; predict's pieces hold whole users
    # (user_order), so each user's history is encoded once for all of its impressions.
    scoring = ScoringDefaults(batch_size=4096, piece_rows=1_000_000, fast_path=True, user_order=True)
    fits = frozenset({"encoding"})  # CGh-f

    def __init__(self, backbone, spec):
        super().__init__(backbone, spec)
        self.time_features = "age" in spec.prompt.article_fields
        self.fast = False
        self.compiled_encoder = self.compiled_position = None
        self.article_cache = None  # fast path: (table_key, vectors [T, d], known [T])

    def make_head(self, d_model: int) -> nn.Module:
        return CandidateHead(d_model, len(self.spec.features), self.spec.feature_buckets, self.spec.feature_values,
                             self.spec.inview_layers)

    @property
    def encoding(self) -> FeatureEncoding | None:
        """CGh-f: how the feature table becomes the codes the head embeds."""
        return FeatureEncoding.from_spec(self.spec) if self.spec.features else None

    @classmethod
    def spec_from_config(cls, config, tokenizer, fit: TrainFit = TrainFit()) -> ModelSpec:
        """CGh-f (``model.features``): the feature encoding is ``fit.encoding``, fitted on ``train.train_features``
        by the training stage (:func:`recsys24.training.fitting.fit_for`)."""
        spec = replace(super().spec_from_config(config, tokenizer), inview_layers=config.model.inview_layers,
                       listwise=config.loss.listwise)
        if not config.model.features:
            return spec
        encoding = fit.encoding
        if encoding is None:
            raise Recsys24Error("model.features: no feature encoding given (training fits it on "
                                "train.train_features: recsys24.training.fitting.fit_for)")
        return replace(spec, features=encoding.names, feature_buckets=encoding.buckets,
                       feature_edges=encoding.ragged_edges, feature_values=encoding.values)

    def make_collator(self, articles, tokenizer, seed: int = 0, features=None):
        from recsys24.model_inputs.history_collator import HistoryCollator
        from recsys24.prompts.article_tokens import build_token_table

        codes = None
        if self.spec.features:
            if features is None:
                raise Recsys24Error("this CGh-f reads the feature table: give the features folder of the split "
                                    "(predict --features FEAT; train.train_features, train.valid_features)")
            codes = feature_codes(features, self.encoding, log)
        table = build_token_table(articles, tokenizer, self.spec.prompt)
        return HistoryCollator(table, self.spec.prompt, seed=seed, features=codes)

    # --- pieces shared by both paths ----------------------------------------
    def article_vectors(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One vector per article: mean of its encoder states, projected. [A, d]."""
        h = self.encode(input_ids, mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        return self.head.article((h * m).sum(1) / m.sum(1).clamp(min=1))

    def candidate_inputs(self, batch: HistoryBatch, articles: torch.Tensor) -> torch.Tensor:
        """Decoder input at the candidate position: article vector (+ time features, + feature codes). [N, d]."""
        x = articles[batch.article_row]
        if self.time_features:
            x = x + self.head.age(batch.age) + self.head.gap(batch.gap)
        if self.head.features is not None:
            x = x + self.head.features(batch.feature_codes.long() + self.head.feature_rows).to(x.dtype)
        if self.head.values is not None:
            x = x + self.head.values(batch.feature_values.to(x.dtype))
        return x

    def candidate_scores(self, states: torch.Tensor, batch: HistoryBatch) -> torch.Tensor:
        """Logits [N] from the final decoder states [N, d] at the candidate positions (through the in-view
        layers first, when the model has them)."""
        if self.head.inview is not None:
            grid, mask = padded_rows(states, batch.group, batch.num_impressions)
            states = self.head.inview(grid, src_key_padding_mask=~mask)[mask]
        return self.head.score(states).squeeze(-1).float()

    def start_embedding(self, n: int) -> torch.Tensor:
        start = self.backbone.shared.weight[self.backbone.config.decoder_start_token_id]
        return start.expand(n, 1, -1)

    # --- the reference path: Hugging Face encoder and decoder ---------------
    def forward(self, batch: HistoryBatch, with_nll: bool = True) -> Output:
        enc = self.backbone.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        x = self.candidate_inputs(batch, self.article_vectors(batch.article_input_ids, batch.article_mask))
        dec = self.backbone.decoder(
            inputs_embeds=torch.cat([self.start_embedding(len(x)), x[:, None]], dim=1),
            encoder_hidden_states=enc[batch.history_row],
            encoder_attention_mask=batch.attention_mask[batch.history_row],
            use_cache=False,
        ).last_hidden_state[:, 1]
        scores = self.candidate_scores(dec, batch)
        nll = None
        if with_nll and batch.labels is not None:
            labels = batch.labels.to(scores.device)
            nll = (listwise_nll(scores, batch.group, labels) if self.spec.listwise
                   else F.binary_cross_entropy_with_logits(scores, labels))
        return Output(scores, nll)

    # --- the fast path -------------------------------------------------------
    def enable_fast_scoring(self, on: bool = True, compile: bool = False) -> None:
        """Score through the cached decoder (``recsys24 predict`` does this unless ``--reference``).

        compile: run the history encoder and the decoder position through
        ``torch.compile`` (dynamic shapes), which fuses T5's many elementwise
        kernels (fp32 RMS norm, tanh-GELU); predict turns it on for CUDA devices.
        """
        self.fast = on
        self.article_cache = None
        self.compiled_encoder = self.compiled_position = None
        if on and compile:
            from recsys24.models.prompt.cached_decoder import decoder_position

            encoder = self.backbone.encoder
            self.compiled_encoder = torch.compile(
                lambda ids, mask: encoder(input_ids=ids, attention_mask=mask).last_hidden_state, dynamic=True)
            self.compiled_position = torch.compile(decoder_position, dynamic=True)

    def encode(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder states [H, L, d] (through the compiled encoder when there is one)."""
        if self.compiled_encoder is not None and not self.training:
            return self.compiled_encoder(input_ids, mask)
        return self.backbone.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state

    def train(self, mode: bool = True):
        self.article_cache = None  # weights are about to change
        return super().train(mode)

    def score(self, batch: HistoryBatch) -> torch.Tensor:
        if not self.fast or self.training:
            return self.forward(batch, with_nll=False).scores
        from recsys24.models.prompt.cached_decoder import cached_scores

        return cached_scores(self, batch)
