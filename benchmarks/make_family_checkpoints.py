#!/usr/bin/env python3
"""Random-weight checkpoints of the other language-model families at the size of their smallest public
model, for the GPU speed rows (scripts/device-cuda.sh; needs torch and transformers):
  python3 benchmarks/make_family_checkpoints.py DIR
writes DIR/mamba2-130m, DIR/rwkv4-169m, DIR/pythia-160m and DIR/recurrentgemma-small (config.json +
model.safetensors, F32). RecurrentGemma's smallest public model has 2.7B parameters; this one keeps its
block pattern, head layout and window at D = 768, 12 layers and a 32k vocabulary, so that it sits beside the
others in size."""
import os, sys
import torch
from transformers import (GPTNeoXConfig, GPTNeoXForCausalLM, Mamba2Config, Mamba2ForCausalLM, RecurrentGemmaConfig,
                          RecurrentGemmaForCausalLM, RwkvConfig, RwkvForCausalLM)

MODELS = {
    "mamba2-130m": lambda: Mamba2ForCausalLM(Mamba2Config(
        hidden_size=768, num_hidden_layers=24, expand=2, head_dim=64, num_heads=24, n_groups=1, state_size=128,
        conv_kernel=4, vocab_size=50288, chunk_size=256, tie_word_embeddings=True, layer_norm_epsilon=1e-5)),
    "rwkv4-169m": lambda: RwkvForCausalLM(RwkvConfig(
        hidden_size=768, num_hidden_layers=12, attention_hidden_size=768, intermediate_size=3072, vocab_size=50277,
        context_length=1024, rescale_every=0, tie_word_embeddings=False)),
    "pythia-160m": lambda: GPTNeoXForCausalLM(GPTNeoXConfig(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, rotary_pct=0.25,
        vocab_size=50304, max_position_embeddings=2048, use_parallel_residual=True, tie_word_embeddings=False)),
    "recurrentgemma-small": lambda: RecurrentGemmaForCausalLM(RecurrentGemmaConfig(
        hidden_size=768, num_hidden_layers=12, lru_width=768, num_attention_heads=12, num_key_value_heads=1,
        intermediate_size=3 * 768, vocab_size=32000, attention_window_size=2048, conv1d_width=4, partial_rotary_factor=0.5,
        block_types=["recurrent", "recurrent", "attention"], tie_word_embeddings=True)),
}


def main(out):
    torch.manual_seed(0)
    for name, make in MODELS.items():
        model = make().eval()
        model.save_pretrained(os.path.join(out, name), safe_serialization=True)
        print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
