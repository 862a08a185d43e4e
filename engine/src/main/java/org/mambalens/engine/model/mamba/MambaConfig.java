package org.mambalens.engine.model.mamba;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;

/**
 * The hyper-parameters of a Mamba-1 language model, read from transformers' {@code MambaConfig}
 * config.json (DESIGN §2). D = hiddenSize, E = intermediateSize, N = stateSize, R = timeStepRank, K = convKernel.
 */
public record MambaConfig(int vocabSize, int hiddenSize, int intermediateSize, int stateSize, int layers,
                          int convKernel, int timeStepRank, boolean useBias, boolean useConvBias,
                          float eps, boolean tieWordEmbeddings, int eosTokenId, int padTokenId) {

    public static MambaConfig from(ConfigFile f) {
        int d = f.positiveInt("hidden_size");
        int expand = f.positiveInt("expand", 2);
        int e = f.positiveInt("intermediate_size", expand * d);
        JsonNode rank = f.json().get("time_step_rank");
        int r;
        if (rank == null || rank.isNull() || (rank.isTextual() && rank.asText().equals("auto"))) {
            r = (d + 15) / 16;                                  // "auto" = ceil(D / 16)
        } else if (rank.isIntegralNumber() && rank.asInt() > 0) {
            r = rank.asInt();
        } else {
            throw f.error("\"time_step_rank\" must be a positive integer or \"auto\", got " + rank);
        }
        return new MambaConfig(f.positiveInt("vocab_size"), d, e, f.positiveInt("state_size", 16),
                f.positiveInt("num_hidden_layers"), f.positiveInt("conv_kernel", 4), r,
                f.bool("use_bias", false), f.bool("use_conv_bias", true),
                (float) f.positiveNumber("layer_norm_epsilon", 1e-5), f.bool("tie_word_embeddings", true),
                f.intOr("eos_token_id", 0), f.intOr("pad_token_id", 0));
    }
}
