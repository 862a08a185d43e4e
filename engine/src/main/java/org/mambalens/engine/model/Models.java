package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.cuda.CudaBackend;
import org.mambalens.engine.cuda.Gpu;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.model.gptneox.GptNeoXModel;
import org.mambalens.engine.model.griffin.GriffinModel;
import org.mambalens.engine.model.mamba.MambaModel;
import org.mambalens.engine.model.mamba2.Mamba2Model;
import org.mambalens.engine.model.rwkv.RwkvModel;
import org.mambalens.engine.model.vim.VimModel;
import org.mambalens.engine.model.vit.ViTModel;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;

/** The registries that map config.json's {@code model_type} to the family that loads it, on the CPU or a CUDA GPU. */
public final class Models {
    private static final Map<String, Function<Path, LanguageModel>> LANGUAGE = new TreeMap<>(Map.of(
            "mamba", MambaModel::load, "mamba2", Mamba2Model::load, "rwkv", RwkvModel::load, "gpt_neox", GptNeoXModel::load,
            "recurrent_gemma", GriffinModel::load));
    /** Loads a model onto a GPU, which it then owns, with its weight GEMMs in the given precision. */
    @FunctionalInterface
    private interface CudaLoader<T> {
        T load(Path dir, Gpu gpu, Precision precision);
    }

    private static final Map<String, CudaLoader<LanguageModel>> LANGUAGE_CUDA = new TreeMap<>(Map.of(
            "mamba", (dir, gpu, precision) -> onGpu(gpu, precision, backend -> MambaModel.load(dir, backend)),
            "gpt_neox", (dir, gpu, precision) -> onGpu(gpu, precision, backend -> GptNeoXModel.load(dir, backend))));

    private static final Set<String> TEXT_CLASSIFIERS = new TreeSet<>(Set.of("mamba", "gpt_neox"));

    private static final Map<String, Function<Path, ImageClassifier>> IMAGE = new TreeMap<>(Map.of(
            "vit", ViTModel::load, "vim", VimModel::load));
    private static final Map<String, CudaLoader<ImageClassifier>> IMAGE_CUDA = new TreeMap<>(Map.of(
            "vit", (dir, gpu, precision) -> onGpu(gpu, precision, backend -> ViTModel.load(dir, backend)),
            "vim", (dir, gpu, precision) -> onGpu(gpu, precision, backend -> VimModel.load(dir, backend))));

    private Models() {
    }

    /** A model loaded onto a new CUDA backend over {@code gpu}, which the model then owns; closed again if loading fails. */
    private static <T> T onGpu(Gpu gpu, Precision precision, Function<Backend, T> load) {
        CudaBackend backend = new CudaBackend(gpu, precision);
        try {
            return load.apply(backend);
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    public static ImageClassifier loadImageClassifier(Path dir) {
        return loadImageClassifier(dir, Device.CPU, Precision.F32);
    }

    /** The classifier on {@code device}; {@code precision} is the GPU's GEMM precision (BF16 only with cuda or auto). */
    public static ImageClassifier loadImageClassifier(Path dir, Device device, Precision precision) {
        ConfigFile config = ConfigFile.in(dir);
        String type = config.text("model_type", null);
        Function<Path, ImageClassifier> loader = type == null ? null : IMAGE.get(type);
        if (loader == null) throw config.error("model_type " + (type == null ? "missing" : "\"" + type + "\"") + " is not a supported image classifier (supported: " + String.join(", ", IMAGE.keySet()) + ")");
        Gpu gpu = device.open(type, IMAGE_CUDA.keySet(), precision);
        return gpu == null ? loader.apply(dir) : IMAGE_CUDA.get(type).load(dir, gpu, precision);
    }

    /** Whether this model_type names a language model family. */
    public static boolean isLanguageModel(String modelType) {
        return LANGUAGE.containsKey(modelType);
    }

    public static LanguageModel loadLanguageModel(Path dir) {
        return loadLanguageModel(dir, Device.CPU, Precision.F32);
    }

    /** A causal LM, or the model under a text classifier (its outputs are then the labels), as {@link #loadImageClassifier}. */
    public static LanguageModel loadLanguageModel(Path dir, Device device, Precision precision) {
        ConfigFile config = ConfigFile.in(dir);
        String type = config.text("model_type", null);
        if (type == null) throw config.error("no \"model_type\"; supported language models: " + String.join(", ", LANGUAGE.keySet()));
        Function<Path, LanguageModel> loader = LANGUAGE.get(type);
        if (loader == null) throw config.error("model_type \"" + type + "\" is not a supported language model (supported: " + String.join(", ", LANGUAGE.keySet()) + ")");
        if (SequenceClassification.from(config) != null) {
            if (!TEXT_CLASSIFIERS.contains(type)) throw config.error("\"" + type + "\" sequence classifiers are not supported (supported: " + String.join(", ", TEXT_CLASSIFIERS) + ")");
        }
        Gpu gpu = device.open(type, LANGUAGE_CUDA.keySet(), precision);
        return gpu == null ? loader.apply(dir) : LANGUAGE_CUDA.get(type).load(dir, gpu, precision);
    }

    /** Whether config.json in {@code dir} describes a text classifier ({@code …ForSequenceClassification}). */
    public static boolean isTextClassifier(Path dir) {
        return SequenceClassification.from(ConfigFile.in(dir)) != null;
    }

    public static TextClassifier loadTextClassifier(Path dir, Device device, Precision precision) {
        ConfigFile config = ConfigFile.in(dir);
        SequenceClassification head = SequenceClassification.from(config);
        if (head == null) {
            throw config.error("not a text classifier: \"architectures\" names no …ForSequenceClassification (text classifiers: "
                    + String.join(", ", TEXT_CLASSIFIERS) + ")");
        }
        return new TextClassifier(loadLanguageModel(dir, device, precision), head);
    }
}
