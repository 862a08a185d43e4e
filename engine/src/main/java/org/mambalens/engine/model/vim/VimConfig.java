package org.mambalens.engine.model.vim;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.ConfigFile;

/**
 * Vision Mamba's config.json as MambaLens defines it ({@code model_type: "vim"}), with the official
 * hustvl/Vim argument names: img_size, patch_size, stride (default patch_size), channels (3),
 * embed_dim (D), depth, d_state (N), d_conv (K, 4), expand (2; E = expand·D, or d_inner), dt_rank
 * ("auto" = ceil(D/16)), num_classes, use_middle_cls_token (true), if_divide_out (true),
 * rms_norm_eps (1e-5). Only the bidirectional "v2" mixer exists here.
 */
public record VimConfig(int imageSize, int patchSize, int stride, int channels, int embedDim, int depth, int stateSize,
                        int convKernel, int innerSize, int dtRank, int numClasses, boolean middleClsToken,
                        boolean divideOut, float eps) {

    public static VimConfig from(ConfigFile f) {
        int d = f.positiveInt("embed_dim");
        int patch = f.positiveInt("patch_size");
        JsonNode rank = f.json().get("dt_rank");
        int r;
        if (rank == null || rank.isNull() || (rank.isTextual() && rank.asText().equals("auto"))) r = (d + 15) / 16;
        else if (rank.isIntegralNumber() && rank.asInt() > 0) r = rank.asInt();
        else throw f.error("\"dt_rank\" must be a positive integer or \"auto\", got " + rank);
        String type = f.text("bimamba_type", "v2");
        if (!type.equals("v2")) throw f.error("bimamba_type \"" + type + "\" is not supported (v2 only)");
        VimConfig c = new VimConfig(f.positiveInt("img_size"), patch, f.positiveInt("stride", patch), f.positiveInt("channels", 3),
                d, f.positiveInt("depth"), f.positiveInt("d_state", 16), f.positiveInt("d_conv", 4),
                f.positiveInt("d_inner", f.positiveInt("expand", 2) * d), r, f.positiveInt("num_classes"),
                f.bool("use_middle_cls_token", true), f.bool("if_divide_out", true), (float) f.positiveNumber("rms_norm_eps", 1e-5));
        if (c.patchSize > c.imageSize) throw f.error("patch_size " + patch + " is larger than img_size " + c.imageSize);
        return c;
    }

    /** Patches per side: (img_size − patch_size) / stride + 1, as the official PatchEmbed. */
    public int grid() {
        return (imageSize - patchSize) / stride + 1;
    }

    /** Tokens: the patches and one cls token. */
    public int tokens() {
        return grid() * grid() + 1;
    }

    /** Where the cls token sits: the middle (M / 2 of M patches) or the front. */
    public int clsPosition() {
        return middleClsToken ? grid() * grid() / 2 : 0;
    }
}
