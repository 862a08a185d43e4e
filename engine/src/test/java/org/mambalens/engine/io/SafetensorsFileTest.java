package org.mambalens.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.tensor.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SafetensorsFileTest {
    @TempDir
    Path tmp;

    /** A file with this header and this many data bytes. */
    private Path raw(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = tmp.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    @Test
    void readsWhatTheWriterWrote() {
        Path p = tmp.resolve("ok.safetensors");
        short bf16One = (short) (Float.floatToIntBits(1.5f) >>> 16);
        short f16Two = Float.floatToFloat16(-2.25f);
        new SafetensorsWriter().metadata("format", "pt")
                .addFloat32("a", new float[]{1, 2, 3, 4, 5, 6}, 2, 3)
                .add("b", DType.BF16, new long[]{1}, new byte[]{(byte) bf16One, (byte) (bf16One >> 8)})
                .add("c", DType.F16, new long[]{1}, new byte[]{(byte) f16Two, (byte) (f16Two >> 8)})
                .add("ids", DType.I64, new long[]{2}, new byte[16])
                .write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p); Checkpoint c = Checkpoint.open(p)) {
            assertThat(f.metadata()).containsEntry("format", "pt");
            assertThat(f.tensors().keySet()).containsExactly("a", "b", "c", "ids");
            Tensor a = c.tensor("a", 2, 3);
            assertThat(a.toFloatArray()).containsExactly(1, 2, 3, 4, 5, 6);
            assertThat(c.tensor("b").getFloat(0)).isEqualTo(1.5f);
            assertThat(c.tensor("c").getFloat(0)).isEqualTo(-2.25f);
            assertThat(c.info("ids").dtype()).isEqualTo(DType.I64);
            assertThat(c.parameterCount()).isEqualTo(10);
            assertThatThrownBy(() -> c.tensor("a", 3, 2)).hasMessageContaining("tensor a has shape [2, 3], the config implies [3, 2]");
            assertThatThrownBy(() -> c.tensor("missing")).hasMessageContaining("missing tensor missing");
        }
    }

    @Test
    void rejectsMalformedFilesNamingThem() throws IOException {
        String ok = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        expectRejected(raw("short.safetensors", "", 0).resolveSibling("short.safetensors"), "shorter than the 8-byte header", f -> Files.write(f, new byte[3]));
        expectRejected(raw("huge.safetensors", ok, 8), "header length", f -> {
            byte[] b = Files.readAllBytes(f);
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, Long.MAX_VALUE - 3);
            Files.write(f, b);
        });
        expectRejected(raw("truncated.safetensors", ok, 4), "truncated", f -> { });
        expectRejected(raw("json.safetensors", "{\"w\":{\"dtype\":\"F3", 0), "not valid JSON", f -> { });
        expectRejected(raw("array.safetensors", "[1,2]", 0), "not a JSON object", f -> { });
        expectRejected(raw("twice.safetensors", "{\"w\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}," + ok.substring(1), 8),
                "Duplicate field 'w'", f -> { });
        expectRejected(raw("trailing.safetensors", ok + "}}garbage", 8), "not valid JSON", f -> { });
        expectRejected(raw("dtype.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "unknown dtype", f -> { });
        expectRejected(raw("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12", f -> { });
        expectRejected(raw("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlaps", f -> { });
        expectRejected(raw("gap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "gap", f -> { });
        expectRejected(raw("extra.safetensors", ok, 12), "belong to no tensor", f -> { });
        expectRejected(raw("negative.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "non-negative", f -> { });
        expectRejected(raw("absurd.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "absurdly large", f -> { });
        expectRejected(raw("utf8.safetensors", "{\"w\":1}", 0), "not valid UTF-8", f -> {
            byte[] b = Files.readAllBytes(f);
            b[10] = (byte) 0xFF;
            Files.write(f, b);
        });
        expectRejected(tmp.resolve("absent.safetensors"), "no such file", f -> { });
    }

    interface Damage {
        void apply(Path f) throws IOException;
    }

    private static void expectRejected(Path file, String why, Damage damage) throws IOException {
        damage.apply(file);
        assertThatThrownBy(() -> SafetensorsFile.open(file).close())
                .isInstanceOf(CheckpointException.class)
                .hasMessageStartingWith(file.toString())
                .hasMessageContaining(why)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @Test
    void readsShardedCheckpointsAndRefusesShardsOutsideTheDirectory() throws IOException {
        new SafetensorsWriter().addFloat32("x", new float[]{1, 2}, 2).write(tmp.resolve("model-00001-of-00002.safetensors"));
        new SafetensorsWriter().addFloat32("y", new float[]{3}, 1).write(tmp.resolve("model-00002-of-00002.safetensors"));
        Files.writeString(tmp.resolve(Checkpoint.INDEX), "{\"metadata\":{},\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                + "\"y\":\"model-00002-of-00002.safetensors\"}}");
        try (Checkpoint c = Checkpoint.open(tmp)) {
            assertThat(c.names()).containsExactly("x", "y");
            assertThat(c.tensor("y").getFloat(0)).isEqualTo(3f);
            assertThat(c.files()).hasSize(2);
        }
        Files.writeString(tmp.resolve(Checkpoint.INDEX), "{\"weight_map\":{\"x\":\"../../etc/passwd\"}}");
        assertThatThrownBy(() -> Checkpoint.open(tmp)).hasMessageContaining("not a plain file name");
        Files.writeString(tmp.resolve(Checkpoint.INDEX), "{\"weight_map\":{\"z\":\"model-00001-of-00002.safetensors\"}}");
        assertThatThrownBy(() -> Checkpoint.open(tmp)).hasMessageContaining("tensor z is not in model-00001-of-00002.safetensors");
    }

    @Test
    void emptyDirectoryIsRefused() {
        assertThatThrownBy(() -> Checkpoint.open(tmp)).hasMessageContaining("no model.safetensors or model.safetensors.index.json");
    }
}
