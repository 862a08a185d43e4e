#!/usr/bin/env python3
"""Random-weight language-model checkpoints at real ~100M configs, for speed measurements only (numpy, F32):
  python3 benchmarks/make_lm_checkpoints.py DIR
writes DIR/pythia-160m (GPT-NeoX: D 768, 12 layers, 12 heads, F 3072, rotary 25 %, parallel residual),
DIR/mamba2-130m (Mamba-2: D 768, 24 layers, 24 heads of 64, N 128, one group, tied head) and
DIR/rwkv-169m (RWKV-4: D 768, 12 layers, F 3072, untied head, as RWKV-4-Pile-169M) and DIR/griffin-120m
(Griffin / RecurrentGemma: D = lru_width 768, 12 layers (recurrent, recurrent, attention), 12 heads of 64 with one
key/value head, window 2048, MLP 2304, tied head, vocab 50280). The Mamba-1
counterpart is ../shared/bench/mamba_floor.py --write DIR/mamba-130m."""
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_vision_checkpoints import write


def main(out):
    r = np.random.default_rng(0)
    n = lambda *s: r.standard_normal(s).astype(np.float32) * 0.02
    V, D, L, H, F = 50304, 768, 12, 12, 3072
    neox = {"gpt_neox.embed_in.weight": n(V, D), "embed_out.weight": n(V, D),
            "gpt_neox.final_layer_norm.weight": np.ones(D), "gpt_neox.final_layer_norm.bias": n(D)}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        neox.update({p + "input_layernorm.weight": np.ones(D), p + "input_layernorm.bias": n(D),
                     p + "post_attention_layernorm.weight": np.ones(D), p + "post_attention_layernorm.bias": n(D),
                     p + "attention.query_key_value.weight": n(3 * D, D), p + "attention.query_key_value.bias": n(3 * D),
                     p + "attention.dense.weight": n(D, D), p + "attention.dense.bias": n(D),
                     p + "mlp.dense_h_to_4h.weight": n(F, D), p + "mlp.dense_h_to_4h.bias": n(F),
                     p + "mlp.dense_4h_to_h.weight": n(D, F), p + "mlp.dense_4h_to_h.bias": n(D)})
    write(os.path.join(out, "pythia-160m"), neox, dict(model_type="gpt_neox", vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                                       num_attention_heads=H, intermediate_size=F, rotary_pct=0.25,
                                                       rotary_emb_base=10000, use_parallel_residual=True,
                                                       max_position_embeddings=8192, layer_norm_eps=1e-5, hidden_act="gelu"))
    V, D, L, E, P, N, G, K = 50288, 768, 24, 1536, 64, 128, 1, 4
    Hm, W = E // P, E + 2 * G * N
    m2 = {"backbone.embeddings.weight": n(V, D), "backbone.norm_f.weight": np.ones(D)}
    for i in range(L):
        p = f"backbone.layers.{i}."
        m2.update({p + "norm.weight": np.ones(D), p + "mixer.in_proj.weight": n(E + W + Hm, D),
                   p + "mixer.conv1d.weight": n(W, 1, K), p + "mixer.conv1d.bias": n(W),
                   p + "mixer.dt_bias": np.full(Hm, -3.0), p + "mixer.A_log": np.log(np.arange(1, Hm + 1, dtype=np.float32)),
                   p + "mixer.D": np.ones(Hm), p + "mixer.norm.weight": np.ones(E), p + "mixer.out_proj.weight": n(D, E)})
    write(os.path.join(out, "mamba2-130m"), m2, dict(model_type="mamba2", vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                                     expand=2, head_dim=P, num_heads=Hm, state_size=N, n_groups=G, conv_kernel=K,
                                                     use_bias=False, use_conv_bias=True, tie_word_embeddings=True,
                                                     layer_norm_epsilon=1e-5))

    V, D, L, F = 50277, 768, 12, 3072
    rw = {"rwkv.embeddings.weight": n(V, D), "head.weight": n(V, D), "rwkv.blocks.0.pre_ln.weight": np.ones(D),
          "rwkv.blocks.0.pre_ln.bias": n(D), "rwkv.ln_out.weight": np.ones(D), "rwkv.ln_out.bias": n(D)}
    mix = lambda: r.uniform(0, 1, (1, 1, D)).astype(np.float32)
    for i in range(L):
        p = f"rwkv.blocks.{i}."
        rw.update({p + "ln1.weight": np.ones(D), p + "ln1.bias": n(D), p + "ln2.weight": np.ones(D), p + "ln2.bias": n(D),
                   p + "attention.time_decay": r.uniform(-1, 1, D).astype(np.float32), p + "attention.time_first": n(D),
                   p + "attention.time_mix_key": mix(), p + "attention.time_mix_value": mix(), p + "attention.time_mix_receptance": mix(),
                   p + "attention.key.weight": n(D, D), p + "attention.value.weight": n(D, D),
                   p + "attention.receptance.weight": n(D, D), p + "attention.output.weight": n(D, D),
                   p + "feed_forward.time_mix_key": mix(), p + "feed_forward.time_mix_receptance": mix(),
                   p + "feed_forward.key.weight": n(F, D), p + "feed_forward.receptance.weight": n(D, D),
                   p + "feed_forward.value.weight": n(D, F)})
    write(os.path.join(out, "rwkv-169m"), rw, dict(model_type="rwkv", vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                                   attention_hidden_size=D, intermediate_size=F, layer_norm_epsilon=1e-5,
                                                   tie_word_embeddings=False))

    V, D, L, H, M, K, window = 50280, 768, 12, 12, 2304, 4, 2048
    kinds = [("attention" if i % 3 == 2 else "recurrent") for i in range(L)]
    bw, dh = D // H, D // H
    gr = {"model.embed_tokens.weight": n(V, D), "model.final_norm.weight": n(D)}
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}."
        t = p + "temporal_block."
        gr.update({p + "temporal_pre_norm.weight": n(D), p + "channel_pre_norm.weight": n(D),
                   p + "mlp_block.gate_proj.weight": n(M, D), p + "mlp_block.gate_proj.bias": n(M),
                   p + "mlp_block.up_proj.weight": n(M, D), p + "mlp_block.up_proj.bias": n(M),
                   p + "mlp_block.down_proj.weight": n(D, M), p + "mlp_block.down_proj.bias": n(D)})
        if kind == "attention":
            gr.update({t + "q_proj.weight": n(D, D), t + "k_proj.weight": n(dh, D), t + "v_proj.weight": n(dh, D),
                       t + "o_proj.weight": n(D, D), t + "o_proj.bias": n(D)})
        else:
            gr.update({t + "linear_x.weight": n(D, D), t + "linear_x.bias": n(D), t + "linear_y.weight": n(D, D),
                       t + "linear_y.bias": n(D), t + "linear_out.weight": n(D, D), t + "linear_out.bias": n(D),
                       t + "conv_1d.weight": n(D, 1, K), t + "conv_1d.bias": n(D),
                       t + "rg_lru.input_gate_weight": n(H, bw, bw), t + "rg_lru.input_gate_bias": n(H, bw),
                       t + "rg_lru.recurrent_gate_weight": n(H, bw, bw), t + "rg_lru.recurrent_gate_bias": n(H, bw),
                       t + "rg_lru.recurrent_param": r.uniform(-1, 1, D).astype(np.float32)})
    write(os.path.join(out, "griffin-120m"), gr, dict(model_type="recurrent_gemma", vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                                      num_attention_heads=H, num_key_value_heads=1, lru_width=D,
                                                      intermediate_size=2 * M, attention_window_size=window, conv1d_width=K,
                                                      block_types=["recurrent", "recurrent", "attention"], logits_soft_cap=30.0,
                                                      partial_rotary_factor=0.5, rope_theta=10000.0, rms_norm_eps=1e-6,
                                                      hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True))


if __name__ == "__main__":
    main(sys.argv[1])
