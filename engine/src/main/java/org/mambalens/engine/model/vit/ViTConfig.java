package org.mambalens.engine.model.vit;

import org.mambalens.engine.io.ConfigFile;

/** transformers' {@code ViTConfig} (DESIGN §6): D = hiddenSize, H = heads, P = patchSize. */
public record ViTConfig(int hiddenSize, int layers, int heads, int intermediateSize, int imageSize, int patchSize,
                        int channels, float eps, boolean qkvBias) {

    public static ViTConfig from(ConfigFile f) {
        String act = f.text("hidden_act", "gelu");
        if (!act.equals("gelu")) throw f.error("hidden_act \"" + act + "\" is not supported (exact \"gelu\" only)");
        ViTConfig c = new ViTConfig(f.positiveInt("hidden_size"), f.positiveInt("num_hidden_layers"),
                f.positiveInt("num_attention_heads"), f.positiveInt("intermediate_size"), f.positiveInt("image_size"),
                f.positiveInt("patch_size"), f.positiveInt("num_channels", 3), (float) f.positiveNumber("layer_norm_eps", 1e-12),
                f.bool("qkv_bias", true));
        if (c.hiddenSize % c.heads != 0) throw f.error("hidden_size " + c.hiddenSize + " is not a multiple of num_attention_heads " + c.heads);
        if (c.imageSize % c.patchSize != 0) throw f.error("image_size " + c.imageSize + " is not a multiple of patch_size " + c.patchSize);
        return c;
    }

    /** Patches per side. */
    public int grid() {
        return imageSize / patchSize;
    }

    /** Tokens: the cls token, then the patches row by row. */
    public int tokens() {
        return grid() * grid() + 1;
    }
}
