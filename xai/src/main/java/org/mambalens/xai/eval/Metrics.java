package org.mambalens.xai.eval;

/**
 * The faithfulness and segmentation measures of DESIGN §8 on one relevance map (one value per pixel, higher
 * = more relevant).
 */
public final class Metrics {
    /** Fractions of the pixels removed at each perturbation step: 0 %, 10 %, …, 90 %. */
    public static final double[] STEPS = {0, .1, .2, .3, .4, .5, .6, .7, .8, .9};

    private Metrics() {
    }

    /**
     * Pixel indices ordered for removal: most relevant first ({@code positive}) or least relevant first;
     * ties keep index order, so the order is deterministic.
     */
    public static int[] removalOrder(float[] map, boolean positive) {
        Integer[] idx = new Integer[map.length];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        java.util.Arrays.sort(idx, (a, b) -> positive ? Float.compare(map[b], map[a]) : Float.compare(map[a], map[b]));
        int[] out = new int[idx.length];
        for (int i = 0; i < out.length; i++) out[i] = idx[i];
        return out;
    }

    /**
     * The perturbation test of one map: per step, 1 if the classifier still predicts {@code predicted} once
     * the step's share of pixels, in {@link #removalOrder}, is set to {@code removed}, else 0 (step 0 removes nothing).
     */
    public static int[] perturbation(java.util.function.ToIntFunction<float[]> classify, float[] pixels, float[] map, boolean positive,
                                     int predicted, float removed) {
        int[] order = removalOrder(map, positive), kept = new int[STEPS.length];
        for (int k = 0; k < STEPS.length; k++) {
            float[] masked = pixels.clone();
            for (int j = 0; j < removed(k, order.length); j++) masked[order[j]] = removed;
            kept[k] = k == 0 || classify.applyAsInt(masked) == predicted ? 1 : 0;
        }
        return kept;
    }

    /** How many pixels step k removes, of n. */
    public static int removed(int step, int n) {
        return (int) Math.round(STEPS[step] * n);
    }

    /** Area under an accuracy curve (in %, one value per step) by the trapezoid rule over the removed fraction. */
    public static double auc(double[] accuracyPercent) {
        double area = 0;
        for (int k = 1; k < STEPS.length; k++) area += (STEPS[k] - STEPS[k - 1]) * (accuracyPercent[k] + accuracyPercent[k - 1]) / 2;
        return area;
    }

    /** Confusion counts of the map thresholded at its mean against the foreground mask. */
    public record Confusion(long tp, long fp, long fn, long tn) {
        public Confusion plus(Confusion o) {
            return new Confusion(tp + o.tp, fp + o.fp, fn + o.fn, tn + o.tn);
        }

        public double pixelAccuracy() {
            return (double) (tp + tn) / Math.max(1, tp + fp + fn + tn);
        }

        /** Mean over the two classes (foreground, background) of intersection over union. */
        public double meanIoU() {
            double fg = (double) tp / Math.max(1, tp + fp + fn), bg = (double) tn / Math.max(1, tn + fp + fn);
            return (fg + bg) / 2;
        }
    }

    public static Confusion confusion(float[] map, boolean[] mask) {
        double mean = 0;
        for (float v : map) mean += v;
        mean /= map.length;
        long tp = 0, fp = 0, fn = 0, tn = 0;
        for (int i = 0; i < map.length; i++) {
            boolean predicted = map[i] > mean;
            if (predicted && mask[i]) tp++;
            else if (predicted) fp++;
            else if (mask[i]) fn++;
            else tn++;
        }
        return new Confusion(tp, fp, fn, tn);
    }

    /**
     * Average precision of {@code scores} for the positives of {@code labels}: Σ_k (R_k − R_{k−1})·P_k over
     * the distinct score thresholds, highest first (tied scores enter together). NaN without positives.
     */
    public static double averagePrecision(float[] scores, boolean[] labels) {
        int[] order = removalOrder(scores, true);
        long positives = 0;
        for (boolean l : labels) if (l) positives++;
        if (positives == 0) return Double.NaN;
        double ap = 0, recallBefore = 0;
        long hits = 0;
        for (int k = 0; k < order.length; ) {
            int end = k;
            while (end < order.length && scores[order[end]] == scores[order[k]]) {
                if (labels[order[end]]) hits++;
                end++;
            }
            double recall = (double) hits / positives, precision = (double) hits / end;
            ap += (recall - recallBefore) * precision;
            recallBefore = recall;
            k = end;
        }
        return ap;
    }

    /** Mean of the foreground's AP (scored by the map) and the background's (scored by its negation). */
    public static double meanAveragePrecision(float[] map, boolean[] mask) {
        float[] negated = new float[map.length];
        boolean[] background = new boolean[mask.length];
        for (int i = 0; i < map.length; i++) {
            negated[i] = -map[i];
            background[i] = !mask[i];
        }
        double fg = averagePrecision(map, mask), bg = averagePrecision(negated, background);
        if (Double.isNaN(fg)) return bg;
        if (Double.isNaN(bg)) return fg;
        return (fg + bg) / 2;
    }
}
