"""The Mono2Binaural / PseudoBinaural audio U-Net with a text vector at the bottleneck.

Input: the STFT of a 0.63 s mix window as 2 channels (Re, Im), 256 frequency bins (the last of
257 dropped) x 64 frames. Five down-convs (4x4, stride 2, BatchNorm, LeakyReLU 0.2), five
transposed convs with skip connections (BatchNorm, ReLU), a sigmoid output mapped to [-1, 1]:
a complex mask that, multiplied with the mix spectrogram, gives the difference (L - R)
spectrogram. The visual feature of the original is replaced by the projected text vector, tiled
over the bottleneck and concatenated; with ``film`` the text vector also scales and shifts the
decoder features (FiLM), which makes the left/right decision easier to learn at small scale.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.pseudobinaural.config import PBConfig


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(True))


class AudioUNet(nn.Module):
    """``(B, 2, F, T)`` mix spectrogram + ``(B, text_dim)`` -> ``(B, 2, F, T)`` mask in [-1, 1]."""

    def __init__(self, channels: list[int], text_dim: int, text_proj_dim: int, film: bool) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (int(c) for c in channels)
        self.downs = nn.ModuleList([_down(2, c1), _down(c1, c2), _down(c2, c3), _down(c3, c4),
                                    _down(c4, c5)])
        self.text_proj = nn.Sequential(nn.Linear(text_dim, text_proj_dim), nn.ReLU(True))
        ups_out = [c4, c3, c2, c1]
        self.ups = nn.ModuleList([
            _up(c5 + text_proj_dim, c4), _up(c4 + c4, c3), _up(c3 + c3, c2), _up(c2 + c2, c1)])
        self.final = nn.ConvTranspose2d(c1 + c1, 2, 4, 2, 1)
        self.film = nn.ModuleList([nn.Linear(text_dim, 2 * c) for c in ups_out]) if film else None
        if self.film is not None:
            for lin in self.film:  # start as the identity transform
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

    def forward(self, spec: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        skips = []
        h = spec
        for down in self.downs:
            h = down(h)
            skips.append(h)
        t = self.text_proj(text)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = torch.cat([h, t], dim=1)
        for i, up in enumerate(self.ups):
            h = up(h)
            if self.film is not None:
                gamma, beta = self.film[i](text).chunk(2, dim=1)
                h = h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
            h = torch.cat([h, skips[-2 - i]], dim=1)
        return 2.0 * torch.sigmoid(self.final(h)) - 1.0


class STFT(nn.Module):
    """Mono2Binaural STFT (Hann window ``win_length`` centred in ``n_fft``, centred frames)."""

    def __init__(self, n_fft: int, hop: int, win: int) -> None:
        super().__init__()
        self.n_fft, self.hop, self.win = n_fft, hop, win
        self.register_buffer("window", torch.hann_window(win, periodic=True), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, 2, n_fft/2, frames)`` (Re, Im; the Nyquist bin dropped)."""
        s = torch.stft(x.float(), self.n_fft, self.hop, self.win, self.window, center=True,
                       pad_mode="reflect", return_complex=True)
        s = s[:, :-1]
        return torch.stack([s.real, s.imag], dim=1)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``(B, 2, n_fft/2, frames)`` -> ``(B, length)``; the dropped bin is restored as zero."""
        c = torch.complex(spec[:, 0].float(), spec[:, 1].float())
        c = torch.cat([c, torch.zeros_like(c[:, :1])], dim=1)
        return torch.istft(c, self.n_fft, self.hop, self.win, self.window, center=True, length=length)


def complex_mul(mask: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """Complex product of two ``(B, 2, F, T)`` (Re, Im) tensors."""
    mr, mi = mask[:, 0], mask[:, 1]
    sr, si = spec[:, 0], spec[:, 1]
    return torch.stack([mr * sr - mi * si, mr * si + mi * sr], dim=1)


class PseudoBinauralNet(nn.Module):
    """Text encoder + STFT + U-Net: mix windows and prompts -> difference spectrograms."""

    def __init__(self, cfg: PBConfig, text_encoder: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_encoder = text_encoder
        self.stft = STFT(cfg.n_fft, cfg.hop_length, cfg.win_length)
        self.unet = AudioUNet(cfg.channels, cfg.text_dim, cfg.text_proj_dim, cfg.film)

    def forward(self, mix: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``mix (B, T)`` -> (predicted difference spectrogram, mix spectrogram), both (B,2,F,T)."""
        if not self.cfg.use_text:
            prompts = [""] * len(prompts)
        text = self.text_encoder(prompts)
        spec = self.stft(mix)
        mask = self.unet(spec, text.to(spec.dtype))
        return complex_mul(mask, spec), spec
