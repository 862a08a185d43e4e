package org.mambalens.engine.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a reference implementation computed for one input, as {@code weights-tools/reference/dump_reference.py}
 * writes it: a safetensors file with the input ({@code input_ids} I64 [L], or {@code pixel_values} F32 [C, H, W])
 * and the outputs to compare (F32, batch dimension dropped: {@code logits}, {@code hidden_states.K} [T, D] for K =
 * 0 … n in the order of transformers' tuple). Read onto the heap whole: dumps are small.
 *
 * @param file     where it was read from
 * @param inputIds the token ids, or null for an image
 * @param pixels   the pixels [C, H, W] of an image, or null for text
 * @param outputs  every other tensor, by name, in the file's order
 * @param metadata the header's {@code __metadata__} (the reference, its versions)
 */
public record ReferenceDump(Path file, int[] inputIds, Output pixels, Map<String, Output> outputs, Map<String, String> metadata) {
    public static final String INPUT_IDS = "input_ids", PIXEL_VALUES = "pixel_values";

    /** One F32 tensor: its shape and values, row-major. */
    public record Output(long[] shape, float[] values) {
    }

    /** Reads {@code file}; a dump without input, or with a tensor of another dtype, is refused in one line naming the file. */
    public static ReferenceDump read(Path file) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            int[] ids = null;
            Output pixels = null;
            Map<String, Output> outputs = new LinkedHashMap<>();
            for (TensorInfo t : st.tensors().values().stream().sorted(Comparator.comparingLong(TensorInfo::begin)).toList()) {
                MemorySegment bytes = st.bytes(t);
                if (t.name().equals(INPUT_IDS)) {
                    ids = ids(file, t, bytes);
                } else {
                    if (t.dtype() != DType.F32) throw new CheckpointException(file, t.name() + " is " + t.dtype() + "; a reference dump holds F32 outputs");
                    float[] values = bytes.toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
                    Output o = new Output(t.shape().clone(), values);
                    if (t.name().equals(PIXEL_VALUES)) pixels = o;
                    else outputs.put(t.name(), o);
                }
            }
            if ((ids == null) == (pixels == null)) {
                throw new CheckpointException(file, "a reference dump holds exactly one input, " + INPUT_IDS + " (I64 [L]) or "
                        + PIXEL_VALUES + " (F32 [C, H, W]); this one has " + (ids == null ? "neither" : "both"));
            }
            if (pixels != null && pixels.shape().length != 3) {
                throw new CheckpointException(file, PIXEL_VALUES + " is " + Arrays.toString(pixels.shape()) + ", not [C, H, W]");
            }
            return new ReferenceDump(file, ids, pixels, Collections.unmodifiableMap(outputs), Map.copyOf(st.metadata()));
        }
    }

    private static int[] ids(Path file, TensorInfo t, MemorySegment bytes) {
        if (t.dtype() != DType.I64 || t.shape().length != 1 || t.shape()[0] == 0) {
            throw new CheckpointException(file, INPUT_IDS + " is " + t.dtype() + t.shapeString() + ", not I64 [L] with L > 0");
        }
        long[] wide = bytes.toArray(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
        int[] ids = new int[wide.length];
        for (int i = 0; i < ids.length; i++) {
            if (wide[i] < 0 || wide[i] > Integer.MAX_VALUE) throw new CheckpointException(file, INPUT_IDS + "[" + i + "] = " + wide[i] + " is not a token id");
            ids[i] = (int) wide[i];
        }
        return ids;
    }
}
