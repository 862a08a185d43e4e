package org.mambalens.engine.model;

import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.ModelFamily.Loader.Image;
import org.mambalens.engine.model.ModelFamily.Loader.Language;
import org.mambalens.engine.model.gptneox.GptNeoXModel;
import org.mambalens.engine.model.griffin.GriffinModel;
import org.mambalens.engine.model.mamba.MambaModel;
import org.mambalens.engine.model.mamba2.Mamba2Model;
import org.mambalens.engine.model.rwkv.RwkvModel;
import org.mambalens.engine.model.vim.VimModel;
import org.mambalens.engine.model.vit.ViTModel;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.LruTrace;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.RwkvTrace;
import org.mambalens.engine.trace.SsdTrace;

import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import static org.mambalens.engine.model.ModelFamily.Capability.CUDA;
import static org.mambalens.engine.model.ModelFamily.Capability.REVERSE_PASS;
import static org.mambalens.engine.model.ModelFamily.Capability.SEQUENCE_CLASSIFICATION;

/**
 * The model families MambaLens runs, one {@link ModelFamily} per config.json {@code model_type}: the only
 * list of them. The loaders, the CLI, xai and the reports ask it. A new family is its own package and one
 * line here.
 */
public final class Families {
    private static final Map<String, ModelFamily> BY_TYPE = index(
            new ModelFamily("mamba", "Mamba", new Language(MambaModel::load), Set.of(MambaLayerTrace.class), SEQUENCE_CLASSIFICATION, REVERSE_PASS, CUDA),
            new ModelFamily("mamba2", "Mamba-2", new Language(Mamba2Model::load), Set.of(SsdTrace.class), SEQUENCE_CLASSIFICATION, REVERSE_PASS, CUDA),
            new ModelFamily("rwkv", "RWKV-4", new Language(RwkvModel::load), Set.of(RwkvTrace.class), SEQUENCE_CLASSIFICATION, REVERSE_PASS, CUDA),
            new ModelFamily("recurrent_gemma", "Griffin", new Language(GriffinModel::load), Set.of(LruTrace.class, AttentionTrace.class), SEQUENCE_CLASSIFICATION, REVERSE_PASS, CUDA),
            new ModelFamily("gpt_neox", "GPT-NeoX", new Language(GptNeoXModel::load), Set.of(AttentionTrace.class), SEQUENCE_CLASSIFICATION, REVERSE_PASS, CUDA),
            new ModelFamily("vim", "Vision Mamba", new Image(VimModel::load), Set.of(MambaLayerTrace.class), REVERSE_PASS, CUDA),
            new ModelFamily("vit", "ViT", new Image(ViTModel::load), Set.of(AttentionTrace.class), REVERSE_PASS, CUDA)
    );

    private Families() {
    }

    /** Every family, by model_type. */
    public static List<ModelFamily> all() {
        return List.copyOf(BY_TYPE.values());
    }

    /** The family of {@code modelType}; refused in one line that lists the supported ones. */
    public static ModelFamily of(String modelType) {
        ModelFamily family = BY_TYPE.get(modelType);
        if (family == null) throw new IllegalArgumentException(unsupported(modelType));
        return family;
    }

    /** The family config.json in {@code dir} names; refused in one line naming the file when it names none or an unknown one. */
    public static ModelFamily forDirectory(Path dir) {
        ConfigFile config = ConfigFile.in(dir);
        String type = config.text("model_type", null);
        if (type == null || !BY_TYPE.containsKey(type)) throw config.error(unsupported(type));
        return BY_TYPE.get(type);
    }

    private static Map<String, ModelFamily> index(ModelFamily... families) {
        Map<String, ModelFamily> byType = new TreeMap<>();
        for (ModelFamily f : families) {
            if (byType.put(f.modelType(), f) != null) throw new IllegalStateException("two families of model_type " + f.modelType());
        }
        return Collections.unmodifiableMap(byType);
    }

    /** The model_types of the families {@code which} accepts, comma-separated, for messages. */
    static String names(Predicate<ModelFamily> which) {
        return BY_TYPE.values().stream().filter(which).map(ModelFamily::modelType).collect(Collectors.joining(", "));
    }

    private static String unsupported(String modelType) {
        return (modelType == null ? "no \"model_type\"" : "model_type \"" + modelType + "\" is not supported") + " (supported: " + names(f -> true) + ")";
    }
}
