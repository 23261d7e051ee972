"""Run folders, checkpoints, resume, metrics log and registration for every trainable kind.

One implementation for PseudoBinaural, TAS and the spatial-QA assessor; nothing here knows a
model. torch and safetensors are imported only by the functions that read or write tensors.

Run folder ``RUN/`` (the format, also in the README)::

    config.json                     the resolved config (every field; has "kind")
    data.json                       training dataset: path, fingerprint, clip counts
    metrics.csv                     one row per logged step (columns chosen by the trainer)
    checkpoints/step_00000250/      model.safetensors, optimizer.safetensors, state.json
    model.safetensors               final weights (written when training finishes)
    run.json                        the record: kind, steps, hashes, fingerprint, command, ...

API for trainers::

    resuming = prepare_run(out, config=cfg_dict, data=data_dict, what="TAS",
                           resumable=RESUMABLE_FIELDS, normalize=None, main=is_main)
    ckpt = latest_checkpoint(out)                       # None or the newest complete one
    if ckpt: c = load_checkpoint(ckpt, fmt=FORMAT, what="TAS")  # Checkpoint(model_state, meta,
        #  optimizer_state, rng, state); set_rng_state(c.rng) restores the RNG
    log = MetricsLog(out / METRICS_FILE, FIELDS, start_step, main=is_main); log.write(row)
    save_checkpoint(out, step, model.state_dict(), meta, opt.state_dict(),
                    extra={...}, keep=2, fmt=FORMAT)   # atomic folder, RNG included
    save_model(out / MODEL_FILE, model.state_dict(), meta, fmt=FORMAT)
    record = finish_run(out, {"kind": ..., "steps": ..., "model_hash": ..., ...}, command=...)

API for loaders (a kind's ``load`` function, see :class:`KindSpec`)::

    md = open_model_dir(path, fmt=FORMAT, what="TAS", kinds=("tas", ...), expect_sha256=None)
    #   md.config (config.json), md.record (run.json or {}), md.tensors, md.meta, md.sha256
    md.check_model(kind=cfg.kind, model_hash=cfg.model_hash())

Kinds and registered runs::

    register_kind(KindSpec("tas", role="system", train="baselines.tas.train:train_tas",
                           load="baselines.tas.system:load_checkpoint_dir"))
    get_kind("tas"); kind_names(); train_run("tas", data, out, overrides={...})
    obj = load_run(RUN)                          # any finished run, by the kind in its config
    rec = register_run(NAME, RUN, expect_role="system", reserved=built_in_names)
    obj = load_registered(NAME, role="system")   # None if NAME is not registered

A kind's ``train(kind, data, out, *, config_file=None, overrides=None, progress=True,
command=None) -> dict`` returns the run record; its ``load(path, *, name=None,
expect_sha256=None, device="cpu") -> obj`` returns an object with ``card() -> dict``,
``checkpoint_sha256: str`` and ``model_hash: str``. Registration records live in
:mod:`tas_bench.runtime.systems_store` (``$TAS_BENCH_HOME/{role}s/NAME.json``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tas_bench.runtime import systems_store
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import (
    atomic_dir,
    atomic_path,
    sha256_file,
    stable_hash,
    sweep_orphans,
    write_json_atomic,
    write_text_atomic,
)
from tas_bench.runtime.registry import Registry

MODEL_FILE, OPTIM_FILE, STATE_FILE = "model.safetensors", "optimizer.safetensors", "state.json"
RUN_FILE, CONFIG_FILE, DATA_FILE, METRICS_FILE = "run.json", "config.json", "data.json", "metrics.csv"
CHECKPOINTS_DIR = "checkpoints"
_RNG_PREFIX = "rng."


# ---------------------------------------------------------------- small helpers


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; missing or malformed -> TasBenchError naming ``what``."""
    p = Path(path)
    if not p.is_file():
        raise TasBenchError(f"{what} not found", path=p)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise TasBenchError(f"malformed {what} ({exc})", path=p) from None
    if not isinstance(obj, dict):
        raise TasBenchError(f"{what} must be a JSON object", path=p)
    return obj


def revision(checkpoint_sha256: str, model_hash: str) -> str:
    """A system revision: hash of the checkpoint bytes and the model config (16 hex chars)."""
    return stable_hash({"checkpoint": checkpoint_sha256, "config": model_hash})[:16]


def git_commit() -> str | None:
    """The git commit of the installed code, or ``None`` outside a checkout."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


# ---------------------------------------------------------------- safetensors files


def save_model(path: str | Path, state: Mapping[str, Any], meta: Mapping[str, str], *,
               fmt: str) -> None:
    """Write model tensors + string metadata (``format`` = ``fmt``) atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={**{k: str(v) for k, v in meta.items()},
                                               "format": fmt})
        canonical_safetensors_header(tmp)


def canonical_safetensors_header(path: str | Path) -> None:
    """Rewrite a safetensors file's header with its metadata keys sorted, in place.

    safetensors writes ``__metadata__`` from a Rust HashMap, whose order changes from process
    to process: the same tensors and metadata gave different bytes (and so a different
    checkpoint sha256 and revision) on every run. The rewritten header has the same length
    (same content, another key order), so the tensor offsets are unchanged.
    """
    import struct

    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        meta = header.pop("__metadata__", None)
        out: dict[str, Any] = {}
        if meta is not None:
            out["__metadata__"] = dict(sorted(meta.items()))
        out.update(header)
        text = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > n:  # cannot happen for a file safetensors wrote; never corrupt one
            raise TasBenchError("unexpected safetensors header layout", path=path)
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def read_model(path: str | Path, *, fmt: str, what: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Model tensors and metadata; a missing, truncated or foreign file is a TasBenchError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    p = Path(path)
    if not p.is_file():
        raise TasBenchError("checkpoint not found", path=p)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise TasBenchError(f"corrupted or truncated checkpoint ({exc})", path=p) from None
    if meta.get("format") != fmt:
        raise TasBenchError(f"not a {what} checkpoint (format {meta.get('format')!r}, "
                            f"expected {fmt!r})", path=p)
    return tensors, meta


def optimizer_to_files(opt_state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors (safetensors) and JSON-able values."""
    import torch

    tensors: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for idx, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in opt_state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_files(tensors: Mapping[str, Any], js: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_to_files`."""
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = t
    for name, v in js.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in js["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_state() -> dict[str, Any]:
    """The torch RNG states to checkpoint: ``rng.torch`` (CPU) and ``rng.cuda.N`` per GPU."""
    import torch

    out = {f"{_RNG_PREFIX}torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"{_RNG_PREFIX}cuda.{i}"] = s
    return out


def set_rng_state(states: Mapping[str, Any] | None) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only where the GPUs exist)."""
    import torch

    if not states:
        return
    if f"{_RNG_PREFIX}torch" in states:
        torch.set_rng_state(states[f"{_RNG_PREFIX}torch"])
    if torch.cuda.is_available():
        cuda = [states[k] for k in sorted(states) if k.startswith(f"{_RNG_PREFIX}cuda.")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------- checkpoints and resume


@dataclass
class Checkpoint:
    """A loaded training checkpoint."""

    path: Path
    step: int
    model_state: dict[str, Any]
    meta: dict[str, str]
    optimizer_state: dict[str, Any]
    rng: dict[str, Any]
    state: dict[str, Any]


def save_checkpoint(run: str | Path, step: int, model_state: Mapping[str, Any],
                    meta: Mapping[str, str], opt_state: Mapping[str, Any],
                    extra: Mapping[str, Any] | None = None, keep: int = 2, *, fmt: str) -> Path:
    """Write ``checkpoints/step_N`` (model, optimizer + RNG, state.json) as one atomic folder
    and prune to the newest ``keep`` complete checkpoints; returns the folder."""
    from safetensors.torch import save_file

    final = Path(run) / CHECKPOINTS_DIR / f"step_{int(step):08d}"
    with atomic_dir(final) as tmp:
        save_model(tmp / MODEL_FILE, model_state, meta, fmt=fmt)
        opt_tensors, opt_json = optimizer_to_files(opt_state)
        opt_tensors.update(rng_state())
        with atomic_path(tmp / OPTIM_FILE, suffix=".safetensors") as t:
            save_file(opt_tensors, str(t))
        write_text_atomic(tmp / STATE_FILE, json.dumps(
            {**dict(extra or {}), "step": int(step), "optimizer": opt_json, "complete": True},
            sort_keys=True, indent=1))
    for old in list_checkpoints(run)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoint_step(p: Path) -> int | None:
    """The step of a complete checkpoint folder, or ``None`` (temp, partial or foreign)."""
    if not p.is_dir() or not p.name.startswith("step_") or not p.name[5:].isdigit():
        return None
    if not all((p / f).is_file() for f in (MODEL_FILE, OPTIM_FILE, STATE_FILE)):
        return None
    try:
        st = json.loads((p / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(st, dict) or st.get("step") != int(p.name[5:]):
        return None
    return int(st["step"])


def list_checkpoints(run: str | Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first (temporary and partial ones ignored)."""
    root = Path(run) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    done = [(s, p) for p in root.iterdir() if (s := _checkpoint_step(p)) is not None]
    return [p for _, p in sorted(done)]


def latest_checkpoint(run: str | Path) -> Path | None:
    """The newest complete checkpoint to resume from (orphaned temp folders swept first)."""
    sweep_orphans(Path(run) / CHECKPOINTS_DIR)
    ckpts = list_checkpoints(run)
    return ckpts[-1] if ckpts else None


def load_checkpoint(ckpt: str | Path, *, fmt: str, what: str) -> Checkpoint:
    """Read a checkpoint folder written by :func:`save_checkpoint`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(ckpt)
    model_state, meta = read_model(p / MODEL_FILE, fmt=fmt, what=what)
    try:
        opt_tensors = load_file(str(p / OPTIM_FILE))
        state = json.loads((p / STATE_FILE).read_text(encoding="utf-8"))
        opt = optimizer_from_files(opt_tensors, state["optimizer"])
        step = int(state["step"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise TasBenchError(f"corrupted checkpoint ({exc})", path=p) from None
    rng = {k: opt_tensors[k] for k in opt_tensors if k.startswith(_RNG_PREFIX)}
    return Checkpoint(path=p, step=step, model_state=model_state, meta=meta,
                      optimizer_state=opt, rng=rng, state=state)


# ---------------------------------------------------------------- run folder


def prepare_run(out: str | Path, *, config: Mapping[str, Any], data: Mapping[str, Any],
                what: str, resumable: Collection[str] = (),
                normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                main: bool = True) -> bool:
    """Create ``out`` as a run folder or check that it holds the same run; returns whether a
    run is already there (to resume).

    An existing run must have the same config (fields in ``resumable`` may change: length and
    bookkeeping) and the same dataset fingerprint (``data["fingerprint"]``); a non-empty folder
    that is not a run is refused. ``normalize`` maps the stored config.json to the current
    schema (e.g. fills fields added since). Writes config.json and data.json; sweeps temp files
    of killed writers. Only the main process (``main``) looks at or writes the folder.
    """
    out_p = Path(out)
    if not main:
        return (out_p / CONFIG_FILE).is_file()
    existing = (out_p / CONFIG_FILE).is_file()
    if existing:
        old = read_json(out_p / CONFIG_FILE, "config")
        if normalize is not None:
            old = normalize(old)
        new = dict(config)
        diff = sorted(k for k in set(old) | set(new)
                      if k not in resumable and old.get(k) != new.get(k))
        if diff:
            raise TasBenchError(f"holds a run with another config (fields {diff}); use a new --out "
                                "or the same config to resume", path=out_p)
        old_data = read_json(out_p / DATA_FILE, "data record")
        if old_data.get("fingerprint") != data.get("fingerprint"):
            raise TasBenchError("holds a run trained on other data (dataset fingerprint differs)",
                                path=out_p)
    elif out_p.exists() and (not out_p.is_dir() or any(out_p.iterdir())):
        raise TasBenchError(f"output folder exists and is not a {what} run; choose a new --out",
                            path=out_p)
    out_p.mkdir(parents=True, exist_ok=True)
    sweep_orphans(out_p)
    sweep_orphans(out_p / CHECKPOINTS_DIR)
    write_json_atomic(out_p / CONFIG_FILE, dict(config))
    write_json_atomic(out_p / DATA_FILE, dict(data))
    return existing


def finish_run(out: str | Path, record: Mapping[str, Any], *, command: str | None = None
               ) -> dict[str, Any]:
    """Write ``run.json``: ``record`` (kind, steps, model_hash, data_fingerprint, ...) plus the
    sha256 of ``model.safetensors`` and ``config.json``, the revision, command, git commit,
    torch and Python versions. Returns the record as written."""
    import torch

    out_p = Path(out)
    sha = sha256_file(out_p / MODEL_FILE)
    rec = {
        **dict(record),
        "checkpoint_sha256": sha,
        "config_sha256": sha256_file(out_p / CONFIG_FILE),
        "revision": revision(sha, str(record.get("model_hash"))),
        "command": command or " ".join(sys.argv),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    rec.setdefault("licence", "Apache-2.0")
    write_json_atomic(out_p / RUN_FILE, rec)
    return rec


class MetricsLog:
    """``metrics.csv``: one CSV row per logged step, safe across kill and resume.

    On opening, rows beyond ``start_step`` (written after the checkpoint a resumed run starts
    from) and rows cut by a kill are dropped, and the file is rewritten atomically; each
    :meth:`write` then appends one whole line. Only the main process writes.
    """

    def __init__(self, path: str | Path, fields: Iterable[str], start_step: int,
                 main: bool = True) -> None:
        self.path, self.main = Path(path), main
        self.fields = tuple(fields)
        if "step" not in self.fields:
            raise ValueError("a metrics log needs a 'step' column")
        if main:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=self.fields, lineterminator="\n")
            w.writeheader()
            w.writerows(self.read(self.path, self.fields, upto=start_step))
            write_text_atomic(self.path, buf.getvalue())

    @staticmethod
    def read(path: str | Path, fields: Iterable[str], upto: int | None = None
             ) -> list[dict[str, str]]:
        """Whole rows with ``step <= upto`` (all when ``None``), in file order, steps unique."""
        p = Path(path)
        if not p.is_file():
            return []
        fields = tuple(fields)
        rows: dict[int, dict[str, str]] = {}
        with open(p, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                return []
            for raw in reader:
                if len(raw) != len(header):
                    continue  # a line cut by a kill
                row = dict(zip(header, raw))
                try:
                    step = int(row.get("step") or "")
                except ValueError:
                    continue
                if upto is None or step <= upto:
                    rows[step] = {k: row.get(k) or "" for k in fields}
        return [rows[s] for s in sorted(rows)]

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (missing columns empty, ``None`` -> empty)."""
        if not self.main:
            return
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=self.fields, lineterminator="\n").writerow(
            {k: ("" if row.get(k) is None else row[k]) for k in self.fields})
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
            f.flush()


# ---------------------------------------------------------------- loading a model folder


@dataclass
class ModelDir:
    """A run or shipped folder opened for inference (files checked, tensors read)."""

    root: Path
    config: dict[str, Any]
    record: dict[str, Any]
    tensors: dict[str, Any]
    meta: dict[str, str]
    sha256: str
    what: str = "model"

    @property
    def model_path(self) -> Path:
        return self.root / MODEL_FILE

    def check_model(self, *, kind: str, model_hash: str) -> None:
        """Refuse weights written for another kind or another config than config.json."""
        if self.meta.get("kind") != kind:
            raise TasBenchError(f"checkpoint of another system ({self.meta.get('kind')!r}, config "
                                f"says {kind!r})", path=self.model_path)
        if self.meta.get("model_hash") != model_hash:
            raise TasBenchError("checkpoint was written for another config than config.json "
                                "(model hash differs)", path=self.model_path)


def open_model_dir(path: str | Path, *, fmt: str, what: str,
                   kinds: Collection[str] | None = None,
                   expect_sha256: str | None = None) -> ModelDir:
    """Open ``model.safetensors`` + ``config.json`` (+ ``run.json``) of a finished run.

    Refuses (TasBenchError, one line) a missing or corrupted file, weights whose sha256 differs
    from ``expect_sha256`` (a registration) or from ``run.json``, and a config of a kind not in
    ``kinds``. The kind/config match of the weights is checked by :meth:`ModelDir.check_model`
    once the caller has parsed the config.
    """
    root = Path(path)
    if not root.is_dir():
        raise TasBenchError("checkpoint folder not found", path=root)
    model_path = root / MODEL_FILE
    if not model_path.is_file():
        raise TasBenchError("no model.safetensors (has training finished?)", path=root)
    record = read_json(root / RUN_FILE, "run record") if (root / RUN_FILE).is_file() else {}
    sha = sha256_file(model_path)
    for want, where in ((expect_sha256, "its registration"),
                        (record.get("checkpoint_sha256"), "run.json")):
        if want and want != sha:
            raise TasBenchError(f"checkpoint sha256 {sha[:12]}… does not match {where} "
                                f"({str(want)[:12]}…): modified or corrupted", path=model_path)
    config = read_json(root / CONFIG_FILE, "config")
    if kinds is not None and config.get("kind") not in kinds:
        raise TasBenchError(f"checkpoint of another system kind {config.get('kind')!r} "
                            f"(expected one of {list(kinds)})", path=root / CONFIG_FILE)
    tensors, meta = read_model(model_path, fmt=fmt, what=what)
    return ModelDir(root=root, config=config, record=record, tensors=tensors, meta=meta,
                    sha256=sha, what=what)


# ---------------------------------------------------------------- kinds


@dataclass(frozen=True)
class KindSpec:
    """A trainable kind: its role (``"system"`` or ``"assessor"``) and lazy ``"module:attr"``
    references (or callables) to its ``train`` and ``load`` functions (module doc)."""

    kind: str
    role: str
    train: str | Callable[..., dict[str, Any]]
    load: str | Callable[..., Any]
    description: str = ""
    options: dict[str, str] = field(default_factory=dict)  # config field -> help, for --help

    def resolve(self, which: str) -> Callable[..., Any]:
        """The ``train`` or ``load`` function, imported on first use."""
        ref = getattr(self, which)
        if not isinstance(ref, str):
            return ref
        import importlib

        mod, _, attr = ref.partition(":")
        obj: Any = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


#: kind -> :class:`KindSpec`; plugins add kinds through the entry-point group ``tas_bench.kinds``
#: (a ``"module:attr"`` naming a KindSpec).
KINDS: Registry = Registry("trainable kind", "tas_bench.kinds")
ROLES = ("system", "assessor")


def register_kind(spec: KindSpec) -> KindSpec:
    """Add a trainable kind (registering the same kind twice with another spec is an error)."""
    if spec.role not in ROLES:
        raise TasBenchError(f"role {spec.role!r} is not one of {list(ROLES)}", field="role")
    old = KINDS._entries.get(spec.kind)
    if old is not None and old == spec:
        return spec
    KINDS.register(spec.kind, spec)
    return spec


def kind_names(role: str | None = None) -> list[str]:
    """Registered trainable kinds (of ``role`` when given), sorted."""
    names = KINDS.names()
    if role is None:
        return names
    out = []
    for n in names:
        with contextlib.suppress(Exception):
            if get_kind(n).role == role:
                out.append(n)
    return out


def get_kind(kind: str) -> KindSpec:
    """The spec of ``kind``; an unknown kind is an error listing the known ones."""
    if kind not in KINDS:
        raise TasBenchError(f"cannot train {kind!r}; trainable kinds: "
                            f"{', '.join(KINDS.names()) or 'none'}")
    spec = KINDS.get(kind)
    if not isinstance(spec, KindSpec):
        raise TasBenchError(f"trainable kind {kind!r} is registered with {spec!r}, not a KindSpec")
    return spec


def train_run(kind: str, data: str | Path, out: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Train (or resume) a run of ``kind`` into ``out``; returns its run record."""
    return get_kind(kind).resolve("train")(kind, data, out, **kwargs)


def run_kind(path: str | Path) -> str | None:
    """The kind of a run folder (from run.json, else config.json), or ``None``."""
    root = Path(path)
    for name in (RUN_FILE, CONFIG_FILE):
        if (root / name).is_file():
            k = read_json(root / name, name).get("kind")
            return k if isinstance(k, str) else None
    return None


def load_run(path: str | Path, *, name: str | None = None, expect_sha256: str | None = None,
             device: str = "cpu") -> Any:
    """Load a finished run (or shipped folder) with the loader of the kind in its config."""
    root = Path(path)
    if not root.is_dir():
        raise TasBenchError("run folder not found", path=root)
    kind = run_kind(root)
    if kind is None or kind not in KINDS:
        raise TasBenchError(f"checkpoint of another system kind {kind!r}; known kinds: "
                            f"{KINDS.names()}", path=root)
    return get_kind(kind).resolve("load")(root, name=name, expect_sha256=expect_sha256,
                                          device=device)


def register_run(name: str, run: str | Path, *, expect_role: str | None = None,
                 reserved: Collection[str] = ()) -> dict[str, Any]:
    """Make a finished run folder the named ``name`` of its kind's role; returns the record.

    Refuses a reserved (built-in) name, a folder that is not a finished run of a known kind
    (of ``expect_role`` when given), weights whose sha256 differs from run.json, or a
    config.json that does not match the run record.
    """
    systems_store.check_name(name)
    run_p = Path(run).resolve()
    if not run_p.is_dir():
        raise TasBenchError("run folder not found", path=run_p)
    rec = read_json(run_p / RUN_FILE, "run record (is training finished?)")
    kind = rec.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise TasBenchError(f"checkpoint of another system kind {kind!r}; registrable "
                            f"kinds: {kind_names(expect_role)}", path=run_p / RUN_FILE)
    spec = get_kind(kind)
    if expect_role is not None and spec.role != expect_role:
        raise TasBenchError(f"a run of kind {kind!r} is a {spec.role}, not a {expect_role}",
                            path=run_p / RUN_FILE)
    if name in reserved:
        raise TasBenchError(f"{name!r} is a built-in {spec.role} name; choose another", field="name")
    obj = spec.resolve("load")(run_p, name=name)  # checks sha256, kind and config
    card = dict(obj.card())
    if card.get("kind", kind) != kind:
        raise TasBenchError(f"config.json kind {card.get('kind')!r} differs from run.json "
                            f"{kind!r}", path=run_p)
    if rec.get("model_hash") != obj.model_hash:
        raise TasBenchError("config.json does not match the run record (model hash differs)",
                            path=run_p / CONFIG_FILE)
    record = {
        "name": name,
        "kind": kind,
        "role": spec.role,
        "run": str(run_p),
        "checkpoint_sha256": obj.checkpoint_sha256,
        "model_hash": obj.model_hash,
        "registered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "card": card | {"name": name},
    }
    systems_store.save_record(name, record, role=spec.role)
    return record


def load_registered(name: str, *, role: str = "system", device: str = "cpu") -> Any:
    """The registered ``name`` of ``role`` loaded by its kind (checkpoint hash re-checked), or
    ``None`` when no such name is registered."""
    rec = systems_store.load_record(name, role=role)
    if rec is None:
        return None
    kind = rec.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise TasBenchError(f"registered {role} {name!r} has unknown kind {kind!r}")
    obj = get_kind(kind).resolve("load")(rec["run"], name=rec["name"],
                                         expect_sha256=rec["checkpoint_sha256"], device=device)
    if rec.get("model_hash") and obj.model_hash != rec["model_hash"]:
        raise TasBenchError("config.json changed since registration (model hash differs)",
                            path=Path(rec["run"]) / CONFIG_FILE)
    return obj
