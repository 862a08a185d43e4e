package org.mambalens.xai.methods;

import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/** A model's most probable outputs (classes, labels or next tokens): the softmax of its logits, highest first. */
public final class TopOutputs {
    /** Output {@code index} with its softmax probability. */
    public record Output(int index, double probability) {
    }

    private TopOutputs() {
    }

    /** The {@code k} most probable outputs of {@code logits} (at least one), ties by index. */
    public static List<Output> of(float[] logits, int k) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : logits) max = Math.max(max, v);
        for (float v : logits) sum += Math.exp(v - max);
        double shift = max, total = sum;
        return IntStream.range(0, logits.length).boxed()
                .sorted(Comparator.comparingDouble((Integer j) -> -logits[j]).thenComparingInt(j -> j))
                .limit(Math.max(1, k))
                .map(j -> new Output(j, Math.exp(logits[j] - shift) / total))
                .toList();
    }
}
