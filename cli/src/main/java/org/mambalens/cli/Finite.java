package org.mambalens.cli;

import org.mambalens.engine.io.CheckpointException;

import java.nio.file.Path;

/** NaN and infinity refused where they enter (inputs) and where they would leave as results (logits), instead of printing NaN probabilities. */
final class Finite {
    private Finite() {
    }

    static float[] inputs(float[] values, String what) {
        int bad = firstNonFinite(values);
        if (bad >= 0) throw new IllegalArgumentException(what + " holds " + values[bad] + " at index " + bad + "; inputs must be finite");
        return values;
    }

    static float[] outputs(float[] logits, Path model) {
        int bad = firstNonFinite(logits);
        if (bad >= 0) {
            throw new CheckpointException(model, "the model computed " + logits[bad] + " for output " + bad
                    + ": its weights hold NaN or infinity, or overflow float32");
        }
        return logits;
    }

    private static int firstNonFinite(float[] values) {
        for (int i = 0; i < values.length; i++) if (!Float.isFinite(values[i])) return i;
        return -1;
    }
}
