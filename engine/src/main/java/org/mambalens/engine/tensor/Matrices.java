package org.mambalens.engine.tensor;

/** Small helpers on row-major float matrices. */
public final class Matrices {
    private Matrices() {
    }

    /** The rows of a row-major [rows, cols] matrix as separate arrays. */
    public static float[][] rows(float[] m, int rows, int cols) {
        float[][] out = new float[rows][];
        for (int r = 0; r < rows; r++) out[r] = java.util.Arrays.copyOfRange(m, r * cols, (r + 1) * cols);
        return out;
    }

    /** Columns [from, from + n) of a row-major [rows, ld] matrix, packed into [rows, n]. */
    public static float[] columns(float[] m, int rows, int ld, int from, int n) {
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) System.arraycopy(m, r * ld + from, out, r * n, n);
        return out;
    }

    /** Writes packed [rows, n] into columns [from, from + n) of a row-major [rows, ld] matrix: the inverse of {@link #columns}. */
    public static void putColumns(float[] m, int rows, int ld, int from, float[] columns, int n) {
        for (int r = 0; r < rows; r++) System.arraycopy(columns, r * n, m, r * ld + from, n);
    }

    /** The rows of a row-major [rows, cols] matrix in reverse order (a token-reversed sequence). */
    public static float[] flipRows(float[] m, int rows, int cols) {
        float[] out = new float[m.length];
        for (int r = 0; r < rows; r++) System.arraycopy(m, r * cols, out, (rows - 1 - r) * cols, cols);
        return out;
    }
}
