package org.mambalens.engine.model.mamba2;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;

/**
 * The hyper-parameters of a Mamba-2 language model, read from transformers' {@code Mamba2Config}
 * config.json. D = hiddenSize, E = expand·D inner channels = H heads × P head_dim, G groups of B and C,
 * N state size, K conv taps; the conv runs over x, B and C together (E + 2·G·N channels).
 */
public record Mamba2Config(int vocabSize, int hiddenSize, int intermediateSize, int heads, int headDim, int groups, int stateSize,
                           int layers, int convKernel, boolean useBias, boolean useConvBias, float eps, double dtMin, double dtMax,
                           boolean tieWordEmbeddings, int eosTokenId) {

    public static Mamba2Config from(ConfigFile f) {
        int d = f.positiveInt("hidden_size"), e = (int) (f.positiveNumber("expand", 2) * d);
        int p = f.positiveInt("head_dim", 64), h = f.positiveInt("num_heads", e / p), g = f.positiveInt("n_groups", 1);
        if (h * p != e) throw f.error("num_heads " + h + " × head_dim " + p + " is not the inner size expand·hidden_size = " + e);
        if (h % g != 0) throw f.error("num_heads " + h + " is not a multiple of n_groups " + g);
        String act = f.text("hidden_act", "silu");
        if (!act.equals("silu") && !act.equals("swish")) throw f.error("hidden_act \"" + act + "\" is not supported (only silu)");
        JsonNode limit = f.json().get("time_step_limit");
        double lo = 0, hi = Double.POSITIVE_INFINITY;
        if (limit != null && limit.isArray() && limit.size() == 2) {
            lo = limit.get(0).asDouble();
            hi = limit.get(1).isNumber() ? limit.get(1).asDouble() : Double.POSITIVE_INFINITY;   // "inf" is written as Infinity or a string
        }
        return new Mamba2Config(f.positiveInt("vocab_size"), d, e, h, p, g, f.positiveInt("state_size", 128),
                f.positiveInt("num_hidden_layers"), f.positiveInt("conv_kernel", 4), f.bool("use_bias", false),
                f.bool("use_conv_bias", true), (float) f.positiveNumber("layer_norm_epsilon", 1e-5), lo, hi,
                f.bool("tie_word_embeddings", false), f.intOr("eos_token_id", 0));
    }

    /** Channels of the conv: x, B and C. */
    public int convChannels() {
        return intermediateSize + 2 * groups * stateSize;
    }

    /** Rows of in_proj: z, then x·B·C, then dt per head. */
    public int projectionSize() {
        return intermediateSize + convChannels() + heads;
    }
}
