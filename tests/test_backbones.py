"""PANNs Cnn14 and VGGish: shapes, parameter names of the official checkpoints, front ends,
and safe checkpoint loading. Models are randomly initialised (no pretrained weights here)."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from evaluators.generation import vggish as V
from evaluators.generation.checkpoints import load_into, load_state_dict_file
from evaluators.generation.cnn14 import CONFIGS, build_cnn14
from tas_bench.runtime.errors import TasBenchError


@pytest.fixture(scope="module")
def cnn14_16k() -> nn.Module:
    torch.manual_seed(0)
    return build_cnn14(16000)


def test_cnn14_forward_shapes(cnn14_16k: nn.Module) -> None:
    x = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        emb, logits = cnn14_16k(x)
        assert emb.shape == (2, 2048) and logits.shape == (2, 527)
        assert emb.dtype == torch.float32 and bool((emb >= 0).all())
        # logits are the AudioSet head applied to the embedding (pre-sigmoid)
        torch.testing.assert_close(logits, cnn14_16k.fc_audioset(emb))
        # Repeatability. With several threads MKL (dynamic threading is its default) and oneDNN
        # may split the sums of the conv / linear layers differently from one call to the next
        # when the cores are busy, so two multi-threaded passes can differ in the last bits
        # (this failed 2 of 8 runs on a loaded 2-core machine). One thread runs each kernel as a
        # fixed sequence of float operations: bit-equal there, and the multi-threaded pass
        # equal to it within float32 rounding of those sums.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            one_a, _ = cnn14_16k(x)
            one_b, _ = cnn14_16k(x)
        finally:
            torch.set_num_threads(threads)
    assert torch.equal(one_a, one_b)
    torch.testing.assert_close(emb, one_a, rtol=1e-4, atol=1e-5)


def test_cnn14_official_parameter_names(cnn14_16k: nn.Module) -> None:
    keys = set(cnn14_16k.state_dict())
    for k in ("spectrogram_extractor.stft.conv_real.weight",
              "spectrogram_extractor.stft.conv_imag.weight", "logmel_extractor.melW",
              "bn0.running_mean", "bn0.num_batches_tracked", "conv_block1.conv1.weight",
              "conv_block6.bn2.running_var", "fc1.weight", "fc1.bias", "fc_audioset.weight",
              "fc_audioset.bias"):
        assert k in keys
    blocks = {k.split(".")[0] for k in keys if k.startswith("conv_block")}
    assert blocks == {f"conv_block{i}" for i in range(1, 7)}
    assert len(keys) == 3 + 5 + 6 * 12 + 4
    sd = cnn14_16k.state_dict()
    assert sd["logmel_extractor.melW"].shape == (257, 64)
    assert sd["conv_block6.conv2.weight"].shape == (2048, 2048, 3, 3)
    assert sd["fc_audioset.weight"].shape == (527, 2048)


def test_cnn14_32k_front_end() -> None:
    cfg = CONFIGS[32000]
    assert (cfg.window_size, cfg.hop_size, cfg.fmax, cfg.weights) == (1024, 320, 14000.0,
                                                                       "Cnn14_mAP=0.431.pth")
    m = build_cnn14(32000)
    assert m.state_dict()["logmel_extractor.melW"].shape == (513, 64)
    assert m.state_dict()["spectrogram_extractor.stft.conv_real.weight"].shape == (513, 1, 1024)
    with pytest.raises(TasBenchError, match="16000 and 32000"):
        build_cnn14(44100)


@pytest.mark.parametrize("rate", [16000, 32000])
def test_cnn14_log_mel_matches_librosa(rate: int) -> None:
    """The front end is |STFT|^2 (Hann, centred, reflect) -> librosa mel -> 10 log10(max(., 1e-10))."""
    cfg = CONFIGS[rate]
    m = build_cnn14(rate) if rate == 32000 else build_cnn14(16000)
    rng = np.random.default_rng(rate)
    x = (rng.standard_normal(rate // 2) * 0.1).astype(np.float32)
    with torch.no_grad():
        ours = m.logmel_extractor(m.spectrogram_extractor(torch.from_numpy(x)[None]))[0, 0].numpy()
    spec = np.abs(librosa.stft(x.astype(np.float64), n_fft=cfg.window_size, hop_length=cfg.hop_size,
                               window="hann", center=True, pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=rate, n_fft=cfg.window_size, n_mels=64, fmin=cfg.fmin, fmax=cfg.fmax)
    ref = 10 * np.log10(np.maximum(mel @ spec, 1e-10)).T
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_vggish_official_parameter_names_and_shapes() -> None:
    m = V.build_vggish()
    expected = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")}
    expected |= {f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    assert set(m.state_dict()) == expected
    assert m.state_dict()["embeddings.0.weight"].shape == (4096, 12288)
    assert m.state_dict()["embeddings.4.weight"].shape == (128, 4096)
    # no ReLU after the last linear layer: embeddings can be negative
    assert isinstance(m.embeddings[-1], nn.Linear)
    torch.manual_seed(0)
    out = m.embed(np.random.default_rng(0).standard_normal(16000 * 2) * 0.1)
    assert out.shape == (2, 128) and out.dtype == np.float32 and (out < 0).any()


@pytest.mark.parametrize("n,expected", [(0, 0), (399, 0), (15599, 0), (15600, 1), (16000, 1),
                                        (30959, 1), (30960, 2), (32000, 2), (160000, 10)])
def test_vggish_example_count(n: int, expected: int) -> None:
    # F = 1 + (n - 400) // 160 STFT frames; examples = 1 + (F - 96) // 96 when F >= 96:
    # one example from n = 400 + 95 * 160 = 15600, two from n = 400 + 191 * 160 = 30960
    assert V.num_examples(n) == expected
    assert V.log_mel_examples(np.zeros(n) + 0.01).shape == (expected, 96, 64)


def test_vggish_front_end_values() -> None:
    w = V.mel_matrix()
    assert w.shape == (257, 64) and np.all(w[0] == 0) and np.all(w <= 1) and np.all(w >= 0)
    # band centres increase; a 1 kHz tone peaks in the band whose centre is closest to 1 kHz
    t = np.arange(16000) / 16000
    ex = V.log_mel_examples(0.5 * np.sin(2 * np.pi * 1000 * t))
    edges = np.linspace(V._hz_to_mel(125.0), V._hz_to_mel(7500.0), 66)
    centres_hz = 700 * (np.exp(edges[1:-1] / 1127.0) - 1)
    assert int(np.argmax(ex[0].mean(axis=0))) == int(np.argmin(np.abs(centres_hz - 1000)))
    # silence gives log(0.01) everywhere (the log offset)
    np.testing.assert_allclose(V.log_mel_examples(np.zeros(16000)), np.log(0.01))
    with pytest.raises(ValueError):
        V.log_mel_examples(np.zeros((2, 16000)))
    assert V.build_vggish().embed(np.zeros(1000)).shape == (0, 128)


# ---- checkpoint loading --------------------------------------------------------------------------

class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def _random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
            for k, v in _Tiny().state_dict().items()}


def _check_loaded(path: Path, state: dict[str, torch.Tensor]) -> None:
    m = _Tiny()
    load_into(m, path)
    for k, v in state.items():
        assert torch.equal(m.state_dict()[k], v.to(m.state_dict()[k].dtype))


def test_load_safetensors_and_official_layouts(tmp_path: Path) -> None:
    state = _random_state()
    save_file(state, tmp_path / "w.safetensors")
    _check_loaded(tmp_path / "w.safetensors", state)
    torch.save(state, tmp_path / "plain.pth")
    _check_loaded(tmp_path / "plain.pth", state)
    # the official PANNs layout, with NumPy arrays next to the weights (16 kHz checkpoint)
    torch.save({"model": state, "iteration": np.arange(3, dtype=np.int64), "epoch": 5},
               tmp_path / "official.pth")
    _check_loaded(tmp_path / "official.pth", state)
    # the same written by NumPy 1.x, which names the array reconstructor numpy.core.multiarray
    with zipfile.ZipFile(tmp_path / "official.pth") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in entries if n.endswith("data.pkl"))
    assert b"numpy._core.multiarray" in entries[pkl]
    entries[pkl] = entries[pkl].replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(tmp_path / "numpy1.pth", "w", compression=zipfile.ZIP_STORED) as z:
        for n, data in entries.items():
            z.writestr(n, data)
    _check_loaded(tmp_path / "numpy1.pth", state)
    # float16 storage is cast to the model's float32
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
              tmp_path / "half.safetensors")
    m = _Tiny()
    load_into(m, tmp_path / "half.safetensors")
    assert m.fc.weight.dtype == torch.float32


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("unpickled!",))


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    state = _random_state()
    with pytest.raises(TasBenchError, match="not found"):
        load_state_dict_file(tmp_path / "absent.pth")
    bad_keys = dict(state)
    bad_keys["extra.weight"] = torch.zeros(1)
    del bad_keys["fc.bias"]
    torch.save(bad_keys, tmp_path / "keys.pth")
    with pytest.raises(TasBenchError) as e:
        load_into(_Tiny(), tmp_path / "keys.pth")
    assert "keys.pth" in str(e.value) and "fc.bias" in str(e.value) and "extra.weight" in str(e.value)
    bad_shape = dict(state)
    bad_shape["fc.weight"] = torch.zeros(2, 4)
    save_file(bad_shape, tmp_path / "shape.safetensors")
    with pytest.raises(TasBenchError, match="shape mismatch for fc.weight"):
        load_into(_Tiny(), tmp_path / "shape.safetensors")
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(TasBenchError, match="weights-only"):
        load_state_dict_file(tmp_path / "evil.pth")
    torch.save({"a": 1}, tmp_path / "notsd.pth")
    with pytest.raises(TasBenchError, match="not a state dict"):
        load_state_dict_file(tmp_path / "notsd.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(TasBenchError, match="unreadable safetensors"):
        load_state_dict_file(tmp_path / "junk.safetensors")


def _as_numpy1(src: Path, dst: Path) -> None:
    """Rewrite a torch.save file as NumPy 1.x writes it (``numpy.core.multiarray`` globals)."""
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in entries if n.endswith("data.pkl"))
    entries[pkl] = entries[pkl].replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as z:
        for n, data in entries.items():
            z.writestr(n, data)


def test_load_official_layout_with_numpy_scalars(tmp_path: Path) -> None:
    """The official PANNs files may hold real NumPy scalars next to the model (iteration
    counters, mAP): they are rebuilt by ``numpy._core.multiarray.scalar``, which must be
    allowed, under its NumPy 2 and NumPy 1.x names."""
    state = _random_state()
    extras = {"iteration": np.int64(600_000), "mAP": np.float64(0.438), "best": np.bool_(True),
              "lr": np.float32(1e-3), "epoch": np.int32(7)}
    torch.save({"model": state, **extras}, tmp_path / "scalars.pth")
    with zipfile.ZipFile(tmp_path / "scalars.pth") as z:
        pkl = next(z.read(n) for n in z.namelist() if n.endswith("data.pkl"))
    assert b"numpy._core.multiarray\nscalar" in pkl  # real scalars, not arrays
    _check_loaded(tmp_path / "scalars.pth", state)
    _as_numpy1(tmp_path / "scalars.pth", tmp_path / "scalars_numpy1.pth")
    _check_loaded(tmp_path / "scalars_numpy1.pth", state)


def test_refusal_never_advises_unsafe_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pickle the weights-only loader rejects is refused with our message: the file, the
    global it needs, that it cannot be loaded safely and how to convert it; never torch's
    advice to re-run with ``weights_only=False``."""
    torch.save({"model": _Evil()}, tmp_path / "evil_global.pth")  # needs builtins.print
    (tmp_path / "evil_proto4.pth").write_bytes(pickle.dumps({"model": _Evil()}, protocol=4))
    messages = []
    for name in ("evil_global.pth", "evil_proto4.pth"):
        with pytest.raises(TasBenchError) as e:
            load_state_dict_file(tmp_path / name)
        msg = str(e.value)
        messages.append(msg)
        assert name in msg and "cannot be loaded safely" in msg and "safetensors" in msg
        assert "\n" not in msg and "\x1b" not in msg
        for advice in ("weights_only=False", "weights_only` set to `False", "Re-running",
                       "add_safe_globals", "file an issue"):
            assert advice not in msg
    assert re.search(r"needs the global (builtins\.)?print\b", messages[0])
    assert "unpickled!" not in capsys.readouterr().out  # nothing was executed
