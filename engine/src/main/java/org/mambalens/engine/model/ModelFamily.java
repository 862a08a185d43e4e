package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.trace.LayerTrace;

import java.nio.file.Path;
import java.util.Set;
import java.util.function.BiFunction;

/**
 * What MambaLens knows of one model family, keyed by config.json's {@code model_type}: the name to print,
 * how its checkpoints load (which says whether it is a language model or an image classifier), the kinds
 * of layer trace its forward pass records, and what it can do beyond that. {@link Families} holds them all.
 *
 * @param modelType    config.json's {@code model_type}
 * @param name         what reports and messages call it ("Mamba-2")
 * @param loader       how its checkpoints load onto a backend
 * @param traces       the kinds of {@link LayerTrace} its layers record (Griffin: two, one per block type)
 * @param capabilities what the explanation methods and the text classifiers may ask of it
 */
public record ModelFamily(String modelType, String name, Loader loader, Set<Class<? extends LayerTrace>> traces,
                          Set<Capability> capabilities) {
    /** Whether a model writes text or classifies images. */
    public enum Kind { LANGUAGE, IMAGE }

    public enum Capability {
        /** transformers has a {@code …ForSequenceClassification} for it (or we wrote its reference) and MambaLens loads it. */
        SEQUENCE_CLASSIFICATION,
        /** Its reverse pass records the gradients attribution reads. */
        REVERSE_PASS,
        /** Its forward pass runs on the CUDA backend. */
        CUDA
    }

    public ModelFamily {
        traces = Set.copyOf(traces);
        capabilities = Set.copyOf(capabilities);
    }

    public ModelFamily(String modelType, String name, Loader loader, Set<Class<? extends LayerTrace>> traces, Capability... capabilities) {
        this(modelType, name, loader, traces, Set.of(capabilities));
    }

    public Kind kind() {
        return switch (loader) {
            case Loader.Language _ -> Kind.LANGUAGE;
            case Loader.Image _ -> Kind.IMAGE;
        };
    }

    public boolean has(Capability capability) {
        return capabilities.contains(capability);
    }

    /** Whether every operation of its forward pass has a CUDA implementation. */
    public boolean onGpu() {
        return has(Capability.CUDA);
    }

    /** How a family's checkpoints load onto a backend, which the model then owns. */
    public sealed interface Loader {
        record Language(BiFunction<Path, Backend, LanguageModel> load) implements Loader {
        }

        record Image(BiFunction<Path, Backend, ImageClassifier> load) implements Loader {
        }
    }
}
