package org.mambalens.engine.model.rwkv;

import org.mambalens.engine.io.ConfigFile;

/**
 * The hyper-parameters of an RWKV-4 language model, read from transformers' {@code RwkvConfig} config.json.
 * D = hiddenSize, A = attentionHiddenSize (the WKV channels; transformers' own recurrence needs A = D),
 * F = intermediateSize. rescaleEvery: transformers halves its stream after every that many layers at inference (0: never).
 */
public record RwkvConfig(int vocabSize, int hiddenSize, int attentionHiddenSize, int intermediateSize, int layers, float eps,
                         boolean tieWordEmbeddings, int eosTokenId, int rescaleEvery) {

    public static RwkvConfig from(ConfigFile f) {
        int d = f.positiveInt("hidden_size");
        int a = f.positiveInt("attention_hidden_size", d);
        if (a != d) throw f.error("attention_hidden_size " + a + " differs from hidden_size " + d + "; transformers' RWKV runs only with them equal");
        return new RwkvConfig(f.positiveInt("vocab_size"), d, a, f.positiveInt("intermediate_size", 4 * d), f.positiveInt("num_hidden_layers"),
                (float) f.positiveNumber("layer_norm_epsilon", 1e-5), f.bool("tie_word_embeddings", false), f.intOr("eos_token_id", 0),
                f.intOr("rescale_every", 6));
    }
}
