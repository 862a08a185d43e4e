package org.mambalens.engine.model;

import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.gptneox.GptNeoXModel;
import org.mambalens.engine.model.mamba.MambaModel;
import org.mambalens.engine.model.mamba2.Mamba2Model;
import org.mambalens.engine.model.rwkv.RwkvModel;
import org.mambalens.engine.model.vim.VimModel;
import org.mambalens.engine.model.vit.ViTModel;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/** The registries that map config.json's {@code model_type} to the family that loads it. */
public final class Models {
    private static final Map<String, Function<Path, LanguageModel>> LANGUAGE = new TreeMap<>(Map.of(
            "mamba", MambaModel::load, "mamba2", Mamba2Model::load, "rwkv", RwkvModel::load, "gpt_neox", GptNeoXModel::load));

    private Models() {
    }

    private static final Map<String, Function<Path, ImageClassifier>> IMAGE = new TreeMap<>(Map.of(
            "vit", ViTModel::load, "vim", VimModel::load));

    public static ImageClassifier loadImageClassifier(Path dir) {
        ConfigFile config = ConfigFile.in(dir);
        String type = config.text("model_type", null);
        Function<Path, ImageClassifier> loader = type == null ? null : IMAGE.get(type);
        if (loader == null) throw config.error("model_type " + (type == null ? "missing" : "\"" + type + "\"") + " is not a supported image classifier (supported: " + String.join(", ", IMAGE.keySet()) + ")");
        return loader.apply(dir);
    }

    /** Whether this model_type names a language model family. */
    public static boolean isLanguageModel(String modelType) {
        return LANGUAGE.containsKey(modelType);
    }

    public static LanguageModel loadLanguageModel(Path dir) {
        ConfigFile config = ConfigFile.in(dir);
        String type = config.text("model_type", null);
        if (type == null) throw config.error("no \"model_type\"; supported language models: " + String.join(", ", LANGUAGE.keySet()));
        Function<Path, LanguageModel> loader = LANGUAGE.get(type);
        if (loader == null) throw config.error("model_type \"" + type + "\" is not a supported language model (supported: " + String.join(", ", LANGUAGE.keySet()) + ")");
        return loader.apply(dir);
    }
}
