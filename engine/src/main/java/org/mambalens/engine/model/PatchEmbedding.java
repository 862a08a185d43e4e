package org.mambalens.engine.model;

import org.mambalens.engine.io.Checkpoint;
import org.mambalens.engine.kernels.Backward;
import org.mambalens.engine.tensor.Tensor;

/**
 * Conv2d(C → D, kernel P, stride s) over an S × S image as one GEMM: the patches, flattened in the
 * conv weight's (c, i, j) order, times the weight viewed as [D, C·P·P]. Shared by ViT and Vision Mamba.
 */
public record PatchEmbedding(Tensor proj,     // [D, C·P·P]
                             float[] bias,    // [D]
                             int channels, int patch, int stride, int imageSize) {

    public static PatchEmbedding load(Checkpoint ck, String weight, String bias, int d, int channels, int patch, int stride, int imageSize) {
        Tensor conv = ck.tensor(weight, d, channels, patch, patch);
        return new PatchEmbedding(new Tensor(conv.name(), conv.dtype(), new long[]{d, (long) channels * patch * patch}, conv.data()),
                ck.tensor(bias, d).toFloatArray(), channels, patch, stride, imageSize);
    }

    /** Patches per side. */
    public int grid() {
        return (imageSize - patch) / stride + 1;
    }

    /** The reverse of the patch embedding (im2col, then this GEMM): ∂/∂pixels [C, S, S] from ∂/∂embeddings [G·G, D] (overlapping patches add up). */
    public float[] backward(float[] dEmbedded) {
        int C = channels, S = imageSize, P = patch, G = grid(), patchLen = C * P * P;
        float[] dFlat = new float[G * G * patchLen];
        Backward.linear(dFlat, dEmbedded, G * G, proj);
        float[] dPixels = new float[C * S * S];
        for (int py = 0; py < G; py++) {
            for (int px = 0; px < G; px++) {
                int row = (py * G + px) * patchLen;
                for (int c = 0; c < C; c++) {
                    for (int i = 0; i < P; i++) {
                        for (int j = 0; j < P; j++) dPixels[(c * S + py * stride + i) * S + px * stride + j] += dFlat[row + (c * P + i) * P + j];
                    }
                }
            }
        }
        return dPixels;
    }
}
