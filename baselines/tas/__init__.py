"""TAS: latent diffusion on the L - R difference, conditioned on text and on the mono mix.

The model core (REFERENCE.md §1, §5), in pieces with small interfaces so that the training
loop, run folders and registration can sit on top of the project's generic plumbing:

* :mod:`baselines.tas.codec`     -- waveform <-> latent: ``relstft`` (CPU default, exact given the
  mono, keeps interaural phase) and ``audioldm2`` (the paper's VAE + HiFi-GAN, local snapshot);
* :mod:`baselines.tas.unet`      -- diffusers ``UNet2DConditionModel`` presets (paper, cpu);
* :mod:`baselines.tas.diffusion` -- the paper's schedule, DDPM training noise, DDIM + CFG sampling
  with per-clip seeded noise;
* :mod:`baselines.tas.flipper`   -- the text spatial-coherence classifier (d vs -d);
* :mod:`baselines.tas.losses`    -- the total training loss of one batch;
* :mod:`baselines.tas.windowing` -- any input length: overlapping windows with cross-fades;
* :mod:`baselines.tas.pipeline`  -- :class:`~baselines.tas.pipeline.TASPipeline` (save / load,
  ``spatialize``) and its :class:`~baselines.base.System` wrapper.
"""
