package org.mambalens.xai.methods;

import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;
import org.mambalens.xai.attention.AttentionSummary;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * Explains one image with one classifier: a forward pass (and a reverse pass when attribution is
 * asked for), the layers' attention summaries, and each method's relevance per patch.
 * Vision Mamba: hidden attention with both directions combined; ViT: softmax probabilities.
 */
public final class ImageExplainer {
    /** The explanation methods, as the CLI names them. */
    public enum Method {
        raw, rollout, attribution;

        /** Whether models of {@code family} can be explained so: raw attention and rollout read any layer trace, attribution needs the reverse pass. */
        public boolean supports(ModelFamily family) {
            return switch (this) {
                case raw, rollout -> !family.traces().isEmpty();
                case attribution -> family.has(ModelFamily.Capability.REVERSE_PASS);
            };
        }

        /** The methods {@code --method} names: raw, rollout, attribution, or all of them. */
        public static List<Method> parse(String option) {
            return switch (option) {
                case "raw" -> List.of(raw);
                case "rollout" -> List.of(rollout);
                case "attribution" -> List.of(attribution);
                case "all" -> List.of(values());
                default -> throw new IllegalArgumentException("--method must be raw, rollout, attribution or all, not " + option);
            };
        }

        /**
         * The methods of {@code asked} (what {@code option} named) that {@code family} supports: one it lacks is an
         * error when the option named it, and only a {@code note} with {@code all}.
         */
        public static List<Method> supported(List<Method> asked, String option, ModelFamily family, Consumer<String> note) {
            List<Method> kept = asked.stream().filter(m -> m.supports(family)).toList();
            if (kept.size() == asked.size()) return asked;
            String lacking = "not available for model_type \"" + family.modelType() + "\" (" + family.name() + ") yet";
            if (!option.equals("all")) throw new IllegalArgumentException("--method " + option + " is " + lacking + " (attribution needs a reverse pass)");
            note.accept(asked.stream().filter(m -> !kept.contains(m)).map(Method::name).collect(Collectors.joining(", "))
                    + " is " + lacking + "; " + kept.stream().map(Method::name).collect(Collectors.joining(", ")) + " only");
            return kept;
        }
    }

    /**
     * @param logits  the model's logits
     * @param target  the explained class
     * @param patches per method, relevance per patch [G·G] (the cls token's row without its column)
     * @param layers  per layer, the attention summary (for the matrix images)
     */
    public record Result(float[] logits, int target, Map<Method, float[]> patches, List<AttentionSummary> layers, int grid) {
    }

    private ImageExplainer() {
    }

    /**
     * @param startLayer first layer raw attention, rollout and Mamba-Attribution use (Transformer-Attribution uses all)
     * @param target     the class to explain; negative: the predicted one
     */
    public static Result explain(ImageClassifier model, float[] pixels, Set<Method> methods, int startLayer, int target) {
        TraceRecorder trace = TraceRecorder.allLayers();
        boolean attribution = methods.contains(Method.attribution);
        float[] logits = attribution ? model.classifyWithGradients(pixels, target, trace) : model.classify(pixels, trace);
        int explained = ImageClassifier.checkTarget(target, logits);
        List<AttentionSummary> layers = new ArrayList<>();
        for (int l = 0; l < model.layers(); l++) layers.add(AttentionMaps.summary(trace.layer(l), model.backend()));
        int cls = model.clsPosition(), T = layers.get(0).tokens();
        Map<Method, float[]> patches = new EnumMap<>(Method.class);
        for (Method m : methods) {
            float[] row = switch (m) {
                case raw -> Explanations.raw(layers, startLayer, cls);
                case rollout -> Explanations.rollout(layers, startLayer, cls);
                case attribution -> Explanations.attribution(trace, layers, startLayer, cls);
            };
            patches.put(m, Explanations.patchMap(row, cls));
        }
        return new Result(logits, explained, patches, layers, (int) Math.round(Math.sqrt(T - 1)));
    }

    /** The seed paper's default start layer: 15 of ViM-tiny's 24, scaled to the model's depth. */
    public static int defaultStartLayer(int layers) {
        return layers * 15 / 24;
    }

    /** The start layer asked for, or -1 for the default; one beyond the model's layers is refused, never clamped. */
    public static int startLayer(int requested, int layers) {
        if (requested == -1) return defaultStartLayer(layers);
        if (requested < 0 || requested >= layers) throw new IllegalArgumentException("--start-layer " + requested + " is outside [0, " + layers + ")");
        return requested;
    }

    /** A patch relevance map upsampled to the image and min-max normalised, [S, S]. */
    public static float[] pixelMap(float[] patches, int grid, int size) {
        return Explanations.normalised(Explanations.upsample(patches, grid, size));
    }
}
