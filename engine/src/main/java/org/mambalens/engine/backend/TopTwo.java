package org.mambalens.engine.backend;

/** {@link Backend#topTwo} on the host. */
public final class TopTwo {
    private TopTwo() {
    }

    /** Per row of x [rows, cols]: the indices of its two largest values, or −1, −1 where the row is not all finite. */
    public static int[] of(float[] x, int rows, int cols) {
        int[] two = new int[2 * rows];
        for (int r = 0; r < rows; r++) {
            int first = -1, second = -1;
            for (int c = 0, at = r * cols; c < cols; c++, at++) {
                float v = x[at];
                if (!Float.isFinite(v)) {
                    first = second = -1;
                    break;
                }
                if (first < 0 || v > x[r * cols + first]) {
                    second = first;
                    first = c;
                } else if (second < 0 || v > x[r * cols + second]) {
                    second = c;
                }
            }
            two[2 * r] = first;
            two[2 * r + 1] = second;
        }
        return two;
    }
}
