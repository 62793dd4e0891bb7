"""``recsys24 train``: fine-tune a recommender with the DeepSpeed engine, resumably.

One optimiser step = ``grad_accum`` micro-batches of ``micro_batch`` training
pairs per rank. Every ``eval_every`` steps the model is scored on a fixed
sample of validation impressions (loss, AUC, MRR, nDCG); checkpoints are saved
every ``save_every`` steps, at each evaluation and at the end. A rerun with the
same run folder continues from the latest checkpoint; SIGTERM or SIGUSR1 (what
SLURM sends before preemption or a time limit) makes every rank save a
checkpoint at the next step boundary and exit with :data:`EXIT_STOPPED`.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from recsys24.config import Config
from recsys24.data import schema as S
from recsys24.data.prepared import Prepared, open_prepared
from recsys24.errors import DataError, Recsys24Error
from recsys24.evaluation.scores import SplitData
from recsys24.io import remove_stale_temps
from recsys24.model_inputs.prefetch import prefetched
from recsys24.models.contract import Model, ModelOrigin
from recsys24.progress import Progress, log, plural
from recsys24.training import checkpoints
from recsys24.training.data import PairStream, validation_sample
from recsys24.training.distributed import DistInfo, any_rank, barrier, setup_distributed
from recsys24.training.engine import make_engine
from recsys24.training.fitting import fit_for
from recsys24.training.runlog import DATA_KEYS, RunLog, TrainSummary, check_same_run, write_run_header

EXIT_STOPPED = 75  # "try again later": the job was asked to stop and saved a checkpoint


class StopSignal:
    """Remembers SIGTERM/SIGUSR1 so the loop can checkpoint and exit between steps."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.requested = True


def _tokenizer(config: Config, articles: pl.DataFrame, run: Path, is_main: bool):
    from recsys24.prompts.tokenizer import load_tokenizer, offline_tokenizer

    if config.model.backbone != "tiny":
        return load_tokenizer(config.model.backbone)
    folder = run / "tokenizer"
    if is_main and not (folder / "spiece.model").is_file():
        offline_tokenizer(articles, folder, vocab_size=config.model.tiny.tokenizer_vocab)
    barrier()
    return load_tokenizer(folder)


# What a progress line shows of a step's metrics; the rest is in metrics.jsonl (a line stays under 120 characters).
SHOWN_METRICS = ("loss", "lr", "val_loss", "val_auc")
VALIDATION_EVERY_S = 15.0  # a validation pass (a minute or more on a CPU) prints its progress this often


def step_news(values: dict) -> str:
    """The metrics of a logged step that its progress line shows.

    >>> step_news({"loss": 0.69314, "lr": 0.002, "samples_per_s": 41.7})
    'loss=0.6931 lr=0.002'
    >>> step_news({"loss": 0.69314, "lr": 0.002, "val_loss": 0.5, "val_auc": 0.57123, "val_mrr": 0.3})
    'loss=0.6931 val_loss=0.5 val_auc=0.5712'
    """
    shown = [k for k in SHOWN_METRICS if k in values and not (k == "lr" and "val_auc" in values)]  # room
    return " ".join(f"{k}={values[k]:.4g}" for k in shown)


def _evaluate(model, collator, sample: pl.DataFrame, per_batch: int, device, is_main: bool = True) -> dict:
    """Loss and accuracy metrics of ``model`` on the validation sample, printing its progress (rank 0)."""
    from recsys24.evaluation.metrics import accuracy

    losses, scores = [], []
    # plain lines even on a terminal: the training bar is still up
    progress = Progress("train: validation", "impressions", sample.height, enabled=is_main, bar=False,
                        every_share=0.25, every_s=VALIDATION_EVERY_S)
    if is_main:  # at once: the progress lines come only after a few seconds
        log(f"train: validation on {plural(sample.height, 'impression')}")
    with torch.no_grad(), progress:
        progress(0)
        for lo in range(0, sample.height, per_batch):
            batch = collator(sample.slice(lo, per_batch)).to(device)
            losses.append(float(model.loss(batch)) * batch.num_impressions)
            s = model.score(batch).float().cpu().numpy()
            scores += np.split(s, np.cumsum(batch.counts)[:-1])
            progress(min(lo + per_batch, sample.height))
    metrics = accuracy(pl.Series(scores, dtype=pl.List(pl.Float32)), sample[S.LABELS])
    out = {"val_loss": sum(losses) / sample.height}
    out.update({f"val_{k}": v for k, v in metrics.items() if k != "impressions"})
    return out


def _collators(model, config: Config, articles, tokenizer, prepared, valid, is_main: bool):
    """The collators of the train and validation frames (they differ for a model that reads the feature table:
    each split has its own features folder, checked against the prepared split)."""
    tc = config.train
    if not model.reads_features:
        collator = model.make_collator(articles, tokenizer, seed=tc.seed)
        return collator, collator
    from recsys24.model_inputs.feature_codes import FeatureEncoding, feature_codes, open_model_features

    if valid is not None and not tc.valid_features:
        raise Recsys24Error("model.features needs train.valid_features too: the features folder of the "
                            f"validation split {valid.path}")
    train_features = open_model_features(tc.train_features, prepared)
    valid_features = open_model_features(tc.valid_features, valid) if valid is not None else None
    if is_main:  # rank 0 codes the features folders, the other ranks wait and then read them
        for features in (train_features, valid_features):
            if features is not None:
                feature_codes(features, FeatureEncoding.from_spec(model.spec), log)
    barrier()
    collator = model.make_collator(articles, tokenizer, seed=tc.seed, features=train_features)
    if valid is None:
        return collator, None
    return collator, model.make_collator(articles, tokenizer, seed=tc.seed, features=valid_features)


def check_data_paths(config: Config) -> None:
    """Refuse a data folder of the config that is not there, naming its key and the override that sets it.

    The path came from a file the user may not have opened (a shipped config's
    ``demo_run/...`` defaults), so the key is what tells them where to look.
    """
    for key in DATA_KEYS:
        path = getattr(config.train, key.split(".", 1)[1])
        if path and not Path(path).is_dir():
            what = "not a folder" if Path(path).exists() else "no such folder"
            made_by = "recsys24 features" if key.endswith("_features") else "recsys24 prepare"
            raise DataError(f"{key}: {path}: {what} (set it with {key}=PATH, a `{made_by}` folder)")


def _open_configured(key: str, path: str):
    """The prepared split of the config's ``key``, its refusal prefixed with the key."""
    try:
        return open_prepared(path)
    except DataError as err:
        raise DataError(f"{key}: {err}") from None


def train(config: Config, run: str | Path) -> TrainSummary:
    """Train ``config`` into the run folder ``run``; returns what it did (written as ``RUN/summary.json``
    when it finished).

    Three steps, as Hugging Face's ``Trainer``: :func:`setup` (data, model,
    engine, resume), :func:`step_loop` (the optimiser steps), and what happens
    between steps as callbacks (:class:`Evaluation`, :class:`Logging`,
    :class:`StopOnSignal`, :class:`Checkpoints`, in that order); then the best
    weights are exported.
    """
    trainer = setup(config, Path(run))
    callbacks = [Evaluation(), Logging(), StopOnSignal(StopSignal()), Checkpoints()]
    stopped = step_loop(trainer, callbacks)
    dist, state, last_tag = trainer.dist, trainer.state, trainer.last_tag
    if stopped:
        if dist.is_main:
            log(f"train: stop requested: saved {last_tag}, exiting to be resumed")
        return TrainSummary(True, state.step, last_tag)

    origin = _best_weights(trainer.engine, trainer.ckpt_dir, state, last_tag)
    # what the weights learned from, by content: scores of this split are in sample, wherever they are copied
    origin = replace(origin, trained_on=(SplitData.of_prepared(trainer.prepared),))
    _export(trainer.engine, trainer.model, trainer.tokenizer, trainer.run / "model", dist.is_main, origin)
    summary = TrainSummary(False, state.step, last_tag, state.position, state.best_tag, state.best_auc,
                           trainer.run / "model")
    if dist.is_main:
        summary.write(trainer.run)
    return summary


@dataclass
class Trainer:
    """What :func:`setup` builds: the run's data, model and engine, and where it resumes."""

    config: Config
    run: Path
    dist: DistInfo
    prepared: Prepared  # the train split
    model: Model
    tokenizer: Any
    engine: Any  # DeepSpeed's engine around the model
    scheduler: Any
    state: checkpoints.TrainerState  # step, data position, best checkpoint: saved in every checkpoint
    ckpt_dir: Path
    stream: PairStream
    collator: Any
    valid_collator: Any
    sample: pl.DataFrame | None  # the validation impressions scored at each evaluation
    run_log: RunLog
    progress: Progress
    last_tag: str | None  # the newest checkpoint

    def evaluate(self) -> dict:
        """The validation metrics of the model now (in eval mode, back to train mode after)."""
        tc, dist = self.config.train, self.dist
        self.engine.eval()
        values = _evaluate(self.model, self.valid_collator, self.sample, tc.eval_batch_impressions, dist.device,
                           dist.is_main)
        self.engine.train()
        return values


@dataclass
class StepEnd:
    """What callbacks see at the end of an optimiser step; each adds what it did for the next ones."""

    step: int
    done: bool  # the last step of the run
    values: dict  # the step's metrics (loss, lr, samples_per_s, epoch; val_* after an evaluation)
    evaluated: bool = False
    stop: bool = False  # leave the loop after this step (a checkpoint is saved first)


class Callback:
    """One concern of the loop between steps (as ``transformers.TrainerCallback``); the default does nothing."""

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, end: StepEnd) -> None:
        pass


class Evaluation(Callback):
    """Validation every ``train.eval_every`` steps and at the last; the untrained model first, as a reference
    point; remembers the best checkpoint by validation AUC."""

    def on_train_begin(self, trainer: Trainer) -> None:
        if trainer.state.step == 0 and trainer.sample is not None:
            trainer.run_log.log(0, trainer.evaluate())

    def on_step_end(self, trainer: Trainer, end: StepEnd) -> None:
        state = trainer.state
        if trainer.sample is None or not (end.step % trainer.config.train.eval_every == 0 or end.done):
            return
        end.values.update(trainer.evaluate())
        end.evaluated = True
        state.history.append([end.step, end.values["val_auc"]])
        if state.best_auc is None or end.values["val_auc"] > state.best_auc:
            state.best_auc, state.best_tag = end.values["val_auc"], f"step{end.step}"


class Logging(Callback):
    """metrics.jsonl every ``train.log_every`` steps, at each evaluation and at the last; the progress line."""

    def on_step_end(self, trainer: Trainer, end: StepEnd) -> None:
        logged = end.step % trainer.config.train.log_every == 0 or end.evaluated or end.done
        if logged:
            trainer.run_log.log(end.step, end.values)
        trainer.progress(end.step, message=step_news(end.values) if logged else "")


class StopOnSignal(Callback):
    """Stop every rank after the step in which any rank got SIGTERM or SIGUSR1."""

    def __init__(self, stop: StopSignal):
        self.stop = stop

    def on_step_end(self, trainer: Trainer, end: StepEnd) -> None:
        end.stop = any_rank(self.stop.requested, trainer.dist.device)


class Checkpoints(Callback):
    """A checkpoint every ``train.save_every`` steps, at each evaluation, at the last step and before a stop."""

    def on_step_end(self, trainer: Trainer, end: StepEnd) -> None:
        if end.step % trainer.config.train.save_every == 0 or end.evaluated or end.done or end.stop:
            trainer.last_tag = checkpoints.save(trainer.engine, trainer.ckpt_dir, trainer.state, trainer.dist.rank)


def setup(config: Config, run: Path) -> Trainer:
    """Check the data, write the run header, build the model (what it fits from data first) and the engine, and
    resume from the latest checkpoint."""
    from recsys24.models.loading import build_recommender

    tc = config.train
    check_data_paths(config)
    prepared = _open_configured("train.train_data", tc.train_data)
    valid = _open_configured("train.valid_data", tc.valid_data) if tc.valid_data else None
    for split in (prepared, valid) if valid is not None else (prepared,):
        split.require_history(config.prompt.history_size, "prompt.history_size")
    if checkpoints.latest_tag(run / "checkpoints") is not None or (run / "model").is_dir():
        check_same_run(run, config.to_dict())  # before anything of the run is written
    dist = setup_distributed(say=lambda message: log(f"train: {message}"))
    run.mkdir(parents=True, exist_ok=True)
    if dist.is_main:
        remove_stale_temps(run)  # e.g. .model.tmp-*/ of a run killed while exporting
        write_run_header(run, config.to_dict())
    articles = prepared.articles()
    if valid is not None and valid.source_dir != prepared.source_dir:
        articles = pl.concat([articles, valid.articles()]).unique(S.ARTICLE_ID, keep="first")
    tokenizer = _tokenizer(config, articles, run, dist.is_main)
    fit = fit_for(config, tokenizer, prepared)  # what the model learns from the data before its first step
    torch.manual_seed(tc.seed)  # identical initial weights on every rank and every rerun
    model = build_recommender(config, tokenizer, fit)
    collator, valid_collator = _collators(model, config, articles, tokenizer, prepared, valid, dist.is_main)

    bf16 = tc.precision == "bf16" or (tc.precision == "auto" and dist.device.type == "cuda")
    engine, _, scheduler = make_engine(model, tc, bf16)
    ckpt_dir = run / "checkpoints"
    state = checkpoints.resume(engine, ckpt_dir, dist.rank)
    stream = PairStream(prepared, tc.seed, dist.rank, dist.world_size, tc.frames)
    sample = validation_sample(valid, tc.eval_impressions, tc.seed) if valid is not None else None
    run_log = RunLog(run, state.step, dist.is_main)
    if dist.is_main:
        what = f"resuming at step {state.step}" if state.step else "starting"
        log(f"train: {what}: {tc.steps} steps x {tc.micro_batch * tc.grad_accum * dist.world_size} pairs, "
            f"world size {dist.world_size}, {'bf16' if bf16 else 'fp32'} on {dist.device.type}"
            f"{', mT5 blocks compiled (the first steps compile them)' if tc.compile else ''}"
            f"{', activations recomputed in backward' if tc.gradient_checkpointing else ''}")
    progress = Progress("train", "steps", tc.steps, enabled=dist.is_main)
    return Trainer(config, run, dist, prepared, model, tokenizer, engine, scheduler, state, ckpt_dir, stream,
                   collator, valid_collator, sample, run_log, progress, checkpoints.latest_tag(ckpt_dir))


def step_loop(trainer: Trainer, callbacks: list[Callback]) -> bool:
    """Run the optimiser steps from ``trainer.state.step`` to ``train.steps``, the callbacks after each; return
    whether a callback stopped the run early."""
    tc, dist, state, engine = trainer.config.train, trainer.dist, trainer.state, trainer.engine
    for callback in callbacks:
        callback.on_train_begin(trainer)
    stride, first_step, first_position = tc.micro_batch * dist.world_size, state.step, state.position
    pairs_per_step = stride * tc.grad_accum

    def collate(k: int):
        """This run's k-th micro-batch: a pure function of (step, micro-batch, rank), so resuming repeats it."""
        step, micro = first_step + k // tc.grad_accum, k % tc.grad_accum
        rng = np.random.default_rng([tc.seed, step, micro, dist.rank])  # shuffles the pairs' candidates
        return trainer.collator(trainer.stream.micro_batch(first_position + k * stride, tc.micro_batch), rng)

    stopped = False
    batches = prefetched(collate, (tc.steps - state.step) * tc.grad_accum)
    with trainer.progress:
        trainer.progress(state.step)
        while state.step < tc.steps:
            t0 = time.perf_counter()
            losses = []
            for _ in range(tc.grad_accum):
                batch = next(batches)
                state.position += stride
                loss = engine(batch.to(dist.device))
                engine.backward(loss)
                engine.step()
                losses.append(loss.detach())  # read once per step: .item() here would stall the GPU's queue
            state.step += 1
            values = {"loss": float(torch.stack(losses).float().mean()), "lr": trainer.scheduler.get_last_lr()[0],
                      "samples_per_s": pairs_per_step / (time.perf_counter() - t0),
                      "epoch": state.position / trainer.stream.total}
            end = StepEnd(state.step, state.step == tc.steps, values)
            for callback in callbacks:
                callback.on_step_end(trainer, end)
            if end.stop:
                stopped = True
                break
    batches.close()
    trainer.run_log.close()
    return stopped


def _best_weights(engine, ckpt_dir: Path, state, last_tag: str | None) -> ModelOrigin:
    """Put the best checkpoint's weights (by validation AUC) in the engine; say where they come from.

    Without validation, or when the last step is the best, the weights stay the last step's.
    """
    tag = state.best_tag if state.best_tag and (ckpt_dir / state.best_tag).is_dir() else None
    if tag is not None and tag != last_tag:
        engine.load_checkpoint(str(ckpt_dir), tag=tag, load_module_only=True, load_optimizer_states=False,
                               load_lr_scheduler_states=False)
    tag = tag or last_tag
    return ModelOrigin(tag, int(tag.removeprefix("step")) if tag else state.step,
                       state.best_auc if tag == state.best_tag else None, state.step)


def _export(engine, model, tokenizer, out: Path, is_main: bool, origin: ModelOrigin | None = None) -> None:
    """Write a from_pretrained-loadable model folder (ZeRO-3 shards gathered first)."""
    import deepspeed

    if engine.zero_optimization_stage() == 3:
        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            if is_main:
                model.save_pretrained(out, tokenizer=tokenizer, origin=origin)
    elif is_main:
        model.save_pretrained(out, tokenizer=tokenizer, origin=origin)
    barrier()
