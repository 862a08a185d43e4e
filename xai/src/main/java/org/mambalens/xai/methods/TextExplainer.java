package org.mambalens.xai.methods;

import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;
import org.mambalens.xai.attention.AttentionSummary;
import org.mambalens.xai.methods.ImageExplainer.Method;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Token relevance for one output of a language model or text classifier at one position (DESIGN §7 with that
 * position's row instead of a cls row): raw attention, rollout and attribution over the hidden attention and
 * Mamba-Attribution for Mamba, Mamba-2, RWKV and Griffin (over their implicit attention, and Griffin's local-attention
 * softmax), over the softmax probabilities and Chefer et al.'s Transformer-Attribution for GPT-NeoX.
 */
public final class TextExplainer {
    private TextExplainer() {
    }

    /**
     * @param logits    the outputs [O] at the position
     * @param predicted their argmax; {@code explained} the output the rows explain
     * @param layers    every layer's attention summary; {@code startLayer} the first the methods used
     * @param rows      per method, the relevance of each token [L]; zero after the position
     * @param trace     what the forward (and reverse) pass recorded
     */
    public record Explanation(float[] logits, int predicted, int explained, List<AttentionSummary> layers, int startLayer,
                              Map<Method, float[]> rows, TraceRecorder trace) {
    }

    /** Explains output {@code output} (null: the predicted one) at {@code position} of {@code ids}. */
    public static Explanation explain(LanguageModel lm, int[] ids, int position, Integer output, List<Method> methods, int startLayer) {
        int L = ids.length, O = lm.outputs(), layerCount = lm.layers();
        if (position < 0 || position >= L) throw new IllegalArgumentException("position " + position + " is outside the text [0, " + L + ")");
        TraceRecorder trace = TraceRecorder.allLayers();
        boolean attribution = methods.contains(Method.attribution);        // its reverse pass traces the forward pass itself
        float[] logits = Arrays.copyOfRange(lm.forward(ids, attribution ? null : trace), position * O, (position + 1) * O);
        int predicted = Sampler.argmax(logits);
        int explained = output != null ? output : predicted;
        LanguageModel.checkOutput(explained, O);
        if (attribution) lm.forwardWithGradients(ids, position, explained, trace);
        List<AttentionSummary> layers = new ArrayList<>();
        for (int l = 0; l < layerCount; l++) layers.add(AttentionMaps.summary(trace.layer(l), lm.backend()));
        int start = ImageExplainer.startLayer(startLayer, layerCount);
        Map<Method, float[]> rows = new EnumMap<>(Method.class);
        for (Method method : methods) {
            float[] row = switch (method) {
                case raw -> Explanations.raw(layers, start, position);
                case rollout -> Explanations.rollout(layers, start, position);
                case attribution -> Explanations.attribution(trace, layers, start, position);
            };
            // Causal models: tokens after the position cannot reach it (min-max normalised maps would otherwise
            // give the zeros above the diagonal the value of −min).
            Arrays.fill(row, position + 1, L, 0f);
            rows.put(method, row);
        }
        return new Explanation(logits, predicted, explained, layers, start, rows, trace);
    }
}
