"""GPU check of the spatial-QA assessor at the paper's scale (needs CUDA; exits otherwise).

A Llama-3.1-8B-shaped causal LM with random weights (bf16) + peft LoRA (r 8, alpha 32 on
q_proj/v_proj), fed 64 audio embeddings + 48 prompt tokens; measures
1. the training step time (LoRA + projector trainable, batch 16, answer 8 tokens);
2. batched greedy QA answers per second at batch 128, 8 new tokens, KV cache,
against the H200 reference: 244 items/s at batch 128 for 64 audio + 48 text tokens in, 8 out.

Usage: ``python benchmarks/gpu_spatial_qa.py [--layers 32] [--batch 128]``
"""

from __future__ import annotations

import argparse
import sys
import time

REFERENCE_ITEMS_PER_S = 244.0


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_spatial_qa: no CUDA device here; nothing measured (run it on a GPU machine)")
        return 0
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--train-batch", type=int, default=16)
    args = ap.parse_args()
    dev = torch.device("cuda")
    cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=args.layers, num_attention_heads=32,
                      num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0)
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(False)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=32,
                                             lora_dropout=0.05, target_modules=["q_proj", "v_proj"]))
    proj = torch.nn.Linear(768, 4096, device=dev, dtype=torch.bfloat16)
    audio = torch.randn(args.batch, 64, 768, device=dev, dtype=torch.bfloat16)
    prompt = torch.randint(0, cfg.vocab_size, (args.batch, 48), device=dev)
    emb = model.get_input_embeddings()

    # 1. training step
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad] +
                            list(proj.parameters()), lr=1e-4)
    tb = args.train_batch
    answer = torch.randint(0, cfg.vocab_size, (tb, 8), device=dev)
    labels = torch.cat([torch.full((tb, 112), -100, device=dev), answer], dim=1)

    def step() -> None:
        x = torch.cat([proj(audio[:tb]), emb(prompt[:tb]), emb(answer)], dim=1)
        loss = model(inputs_embeds=x, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t_step = (time.perf_counter() - t0) / 5
    print(f"training step (batch {tb}, 64 audio + 48 prompt + 8 answer tokens, LoRA): "
          f"{t_step:.3f} s/step")

    # 2. batched greedy decoding with a KV cache
    model.eval()
    with torch.no_grad():
        def decode() -> None:
            x = torch.cat([proj(audio), emb(prompt)], dim=1)
            out = model(inputs_embeds=x, use_cache=True)
            cache, tok = out.cache, out.logits[:, -1].argmax(-1)
            pos = x.shape[1]
            mask = torch.ones(args.batch, pos, dtype=torch.long, device=dev)
            for _ in range(7):
                mask = torch.cat([mask, torch.ones(args.batch, 1, dtype=torch.long, device=dev)], 1)
                out = model(input_ids=tok[:, None], attention_mask=mask, cache=cache,
                            use_cache=True,
                            position_ids=torch.full((args.batch, 1), pos, device=dev))
                cache, tok = out.cache, out.logits[:, -1].argmax(-1)
                pos += 1

        decode()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(3):
            decode()
        torch.cuda.synchronize()
        per = (time.perf_counter() - t0) / 3
    rate = args.batch / per
    print(f"batched QA answers (batch {args.batch}, 8 new tokens): {rate:.0f} items/s "
          f"(H200 reference {REFERENCE_ITEMS_PER_S:.0f} items/s: ratio {rate / REFERENCE_ITEMS_PER_S:.2f})")
    print(f"device: {torch.cuda.get_device_name(0)}, layers {args.layers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
