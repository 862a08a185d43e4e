package org.mambalens.engine.model.gptneox;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;

/**
 * The hyper-parameters of a GPT-NeoX / Pythia language model, read from transformers' {@code GPTNeoXConfig}
 * config.json. D = hiddenSize, H = heads, dh = D / H, F = intermediateSize; the rotary embedding turns
 * the first {@code rotaryDims} of each head (rotary_pct, or partial_rotary_factor in newer files).
 */
public record GptNeoXConfig(int vocabSize, int hiddenSize, int layers, int heads, int intermediateSize, int rotaryDims,
                            double rotaryBase, boolean parallelResidual, boolean attentionBias, float eps,
                            int maxPositions, int eosTokenId) {

    public static GptNeoXConfig from(ConfigFile f) {
        int d = f.positiveInt("hidden_size"), h = f.positiveInt("num_attention_heads");
        if (d % h != 0) throw f.error("hidden_size " + d + " is not a multiple of num_attention_heads " + h);
        String act = f.text("hidden_act", "gelu");
        if (!act.equals("gelu")) throw f.error("hidden_act \"" + act + "\" is not supported (only the exact \"gelu\")");
        JsonNode rope = f.json().path("rope_parameters");
        double pct = f.json().has("rotary_pct") ? f.json().get("rotary_pct").asDouble()
                : f.json().has("partial_rotary_factor") ? f.json().get("partial_rotary_factor").asDouble()
                : rope.path("partial_rotary_factor").asDouble(0.25);
        double base = f.json().has("rotary_emb_base") ? f.json().get("rotary_emb_base").asDouble()
                : f.json().has("rope_theta") ? f.json().get("rope_theta").asDouble() : rope.path("rope_theta").asDouble(10000);
        String ropeType = rope.path("rope_type").asText("default");
        if (!ropeType.equals("default") || f.json().path("rope_scaling").isObject()) {
            throw f.error("rope type \"" + ropeType + "\" / rope_scaling is not supported (only the default rotary embedding)");
        }
        if (pct <= 0 || pct > 1) throw f.error("rotary_pct must be in (0, 1], got " + pct);
        int rotary = (int) ((d / h) * pct);
        if (rotary % 2 != 0) throw f.error("the rotary part of a head (" + rotary + " dims) must be even");
        return new GptNeoXConfig(f.positiveInt("vocab_size"), d, f.positiveInt("num_hidden_layers"), h,
                f.positiveInt("intermediate_size", 4 * d), rotary, base, f.bool("use_parallel_residual", true),
                f.bool("attention_bias", true), (float) f.positiveNumber("layer_norm_eps", 1e-5),
                f.positiveInt("max_position_embeddings", 2048), f.intOr("eos_token_id", 0));
    }

    public int headSize() {
        return hiddenSize / heads;
    }
}
