"""TAS paper-preset speed on a GPU against the H200 reference figures.

Usage: ``python benchmarks/gpu_tas.py [--train-steps N] [--sample-steps S] [--tiny]``.

On a CUDA machine: builds randomly initialised models of the paper preset's shapes (the
AudioLDM2-width U-Net on the 8-channel latent of a 10.24 s window, (8, 256, 16), conditioned on
129 FLAN-T5-large-width tokens of 1024 dims; REFERENCE §5) and measures

* training: seconds per AdamW step (β 0.95, 0.999) at batch 32 in bf16 autocast (forward of the
  ε-prediction MSE with condition dropout, backward, optimiser step);
* sampling: seconds per clip for 200-step DDIM with classifier-free guidance at batch 64
  (each step one forward of the batch [uncond 64, cond 64], the project's sampler).

and prints them next to the reference figures measured on an H200 with random models of the
same shapes: 0.118 s/step and 0.27 s/clip. The frozen VAE/vocoder and T5 are not timed (they run
once per clip, outside the loop). Without CUDA it says so and exits 0; ``--tiny`` runs the same
code with the cpu preset's widths and a few steps on any device (a check that it runs).
"""

from __future__ import annotations

import argparse
import time

import torch

from baselines.tas.diffusion import ddim_sample, make_train_scheduler, unet_denoiser
from baselines.tas.losses import total_loss
from baselines.tas.unet import build_unet, count_parameters, unet_config

REF_TRAIN_S_PER_STEP = 0.118
REF_SAMPLE_S_PER_CLIP = 0.27
LATENT = (8, 256, 16)  # AudioLDM2 VAE latent of 1024 mel frames x 64 mels (compression 4)
TEXT_TOKENS, TEXT_DIM = 129, 1024  # learned null token + 128 FLAN-T5-large tokens


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=20, help="timed training steps (after 3 warm-up)")
    ap.add_argument("--sample-steps", type=int, default=200, help="DDIM steps")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--sample-batch", type=int, default=64)
    ap.add_argument("--tiny", action="store_true", help="cpu-preset widths, few steps, any device")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available() and not a.tiny:
        print("gpu_tas: no CUDA device on this machine; nothing measured (run it where a GPU "
              "is at hand; --tiny checks the code on the CPU)")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    latent, tokens, dim = LATENT, TEXT_TOKENS, TEXT_DIM
    preset = "paper"
    if a.tiny:
        preset, latent, tokens, dim = "cpu", (8, 32, 16), 9, 64
        a.train_steps, a.sample_steps = min(a.train_steps, 2), min(a.sample_steps, 2)
        a.train_batch, a.sample_batch = min(a.train_batch, 2), min(a.sample_batch, 2)
    torch.manual_seed(0)
    unet = build_unet(unet_config(preset, latent[0], dim)).to(device)
    print(f"device {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}, torch "
          f"{torch.__version__}, U-Net preset {preset}: {count_parameters(unet):,} parameters, "
          f"latent {latent}, text {tokens} x {dim}")
    den = unet_denoiser(unet)
    sched = make_train_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), lr=3e-5, betas=(0.95, 0.999))
    b = a.train_batch
    z0 = torch.randn(b, *latent, device=device)
    zm = torch.randn(b, *latent, device=device)
    text = torch.randn(b, tokens, dim, device=device)
    mask = torch.ones(b, tokens, dtype=torch.bool, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for i in range(3 + a.train_steps):
        _sync(device)
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(i)
        with autocast:
            loss = total_loss(den, sched, z0, zm, text, mask, generator=g)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    train_s = sum(times) / len(times)
    print(f"training: {train_s:.4f} s/step at batch {b} (bf16 autocast on GPU)  "
          f"[H200 reference {REF_TRAIN_S_PER_STEP} s/step; ratio {train_s / REF_TRAIN_S_PER_STEP:.2f}]")
    del opt, z0
    unet.eval()
    n = a.sample_batch
    zm = torch.randn(n, *latent, device=device)
    text = torch.randn(n, tokens, dim, device=device)
    mask = torch.ones(n, tokens, dtype=torch.bool, device=device)
    keys = [(f"clip{k}", 0) for k in range(n)]
    with torch.no_grad(), autocast:
        ddim_sample(den, zm[:1], text[:1], mask[:1], keys[:1], seed=0, steps=2,
                    guidance_scale=2.5, micro_batch=1)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        ddim_sample(den, zm, text, mask, keys, seed=0, steps=a.sample_steps, guidance_scale=2.5,
                    micro_batch=n)
        _sync(device)
    sample_s = (time.perf_counter() - t0) / n
    print(f"sampling: {sample_s:.4f} s/clip ({a.sample_steps}-step DDIM + CFG, batch {n})  "
          f"[H200 reference {REF_SAMPLE_S_PER_CLIP} s/clip; ratio {sample_s / REF_SAMPLE_S_PER_CLIP:.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
