package org.mambalens.engine.model.griffin;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;

import java.util.ArrayList;
import java.util.List;

/**
 * The hyper-parameters of a Griffin / RecurrentGemma language model, read from transformers'
 * {@code RecurrentGemmaConfig} config.json. D = hiddenSize, W = lruWidth (the recurrent channels, split into H
 * blocks for the RG-LRU gates), H query heads of dh = D / H and KV key/value heads for local attention over a
 * window of {@code window} tokens, rotary on the first {@code rotaryDims} of each head, M = intermediateSize / 2
 * MLP channels, K conv taps. {@code blockTypes} is the repeated pattern of temporal blocks.
 */
public record GriffinConfig(int vocabSize, int hiddenSize, int lruWidth, int heads, int kvHeads, int headDim, int rotaryDims,
                            double ropeTheta, int window, int mlpWidth, int convWidth, int layers, List<String> blockTypes,
                            float eps, float logitsSoftCap, int eosTokenId) {

    public static GriffinConfig from(ConfigFile f) {
        int d = f.positiveInt("hidden_size"), h = f.positiveInt("num_attention_heads");
        int w = f.positiveInt("lru_width", d), kv = f.positiveInt("num_key_value_heads", h);
        if (d % h != 0) throw f.error("hidden_size " + d + " is not a multiple of num_attention_heads " + h);
        if (w % h != 0) throw f.error("lru_width " + w + " is not a multiple of num_attention_heads " + h + " (the RG-LRU gate blocks)");
        if (h % kv != 0) throw f.error("num_attention_heads " + h + " is not a multiple of num_key_value_heads " + kv);
        String act = f.text("hidden_activation", "gelu_pytorch_tanh");
        if (!act.equals("gelu_pytorch_tanh")) throw f.error("hidden_activation \"" + act + "\" is not supported (only gelu_pytorch_tanh)");
        JsonNode rope = f.json().path("rope_parameters");
        double partial = f.json().has("partial_rotary_factor") ? f.json().get("partial_rotary_factor").asDouble()
                : rope.path("partial_rotary_factor").asDouble(0.5);
        double theta = f.json().has("rope_theta") ? f.json().get("rope_theta").asDouble() : rope.path("rope_theta").asDouble(10000);
        if (!rope.path("rope_type").asText("default").equals("default")) throw f.error("rope_type \"" + rope.path("rope_type").asText() + "\" is not supported (only default)");
        int dh = d / h, rotary = (int) (dh * partial);
        if (partial <= 0 || partial > 1 || rotary % 2 != 0) throw f.error("partial_rotary_factor " + partial + " does not give an even rotary part of a " + dh + "-dim head");
        List<String> types = new ArrayList<>();
        JsonNode blocks = f.json().path("block_types");
        if (blocks.isMissingNode()) types.addAll(List.of("recurrent", "recurrent", "attention"));
        else for (JsonNode b : blocks) types.add(b.asText());
        if (types.isEmpty()) throw f.error("block_types is empty");
        for (String t : types) if (!t.equals("recurrent") && !t.equals("attention")) throw f.error("block_types: unknown block \"" + t + "\" (recurrent or attention)");
        double cap = f.json().path("logits_soft_cap").isNumber() ? f.json().get("logits_soft_cap").asDouble() : 0;
        return new GriffinConfig(f.positiveInt("vocab_size"), d, w, h, kv, dh, rotary, theta, f.positiveInt("attention_window_size", 2048),
                f.positiveInt("intermediate_size", 3 * d) / 2, f.positiveInt("conv1d_width", 4), f.positiveInt("num_hidden_layers"),
                List.copyOf(types), (float) f.positiveNumber("rms_norm_eps", 1e-6), (float) cap, f.intOr("eos_token_id", 1));
    }

    /** Whether layer i is a local-attention block (else a recurrent one): block_types repeated over the layers. */
    public boolean isAttention(int layer) {
        return blockTypes.get(layer % blockTypes.size()).equals("attention");
    }

    /** Channels per RG-LRU gate block. */
    public int blockWidth() {
        return lruWidth / heads;
    }
}
