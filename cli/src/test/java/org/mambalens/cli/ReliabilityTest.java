package org.mambalens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.xai.data.FashionMnist;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.mambalens.cli.CliTest.expectOneLineError;
import static org.mambalens.cli.CliTest.run;

/** Issue 23: what a new user hit — hostile inputs, out-of-range options, leftovers — each refused in one line or done right. */
class ReliabilityTest {
    @TempDir
    Path tmp;

    private static final Path MAMBA = Fixtures.golden().resolve("mamba/tied_f32"), VIT = Fixtures.golden().resolve("vit/vit_small");

    /** A malformed command line: exit 2, one line naming the option, nothing else. */
    private static void expectUsageError(CliTest.Result r, String mentions) {
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        assertThat(r.err().strip()).contains(mentions).doesNotContain("\n").doesNotContain("Exception");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "classify --texts --limit -1|--limit",
            "classify --texts --limit 0|--limit",
            "classify --texts --top 0|--top",
            "generate --token-ids 1 --max-new-tokens -1|--max-new-tokens",
            "generate --token-ids 1 --max-new-tokens 99999999999|--max-new-tokens",
            "generate --token-ids 1 --top-k -3 --temperature 1|--top-k",
            "explain --start-layer -1 --out x|--start-layer"})
    void aCountOrIndexOutOfRangeIsAMalformedCommandLine(String line, String option) {
        expectUsageError(run(line.split(" ")), option);
    }

    @Test
    void anOptionIsNeverSilentlyReplacedOrIgnored() {
        expectOneLineError(run("generate", "--token-ids", "1", "--top-k", "5"), "give --temperature");
        expectOneLineError(run("explain", "--start-layer", "99", "--out", tmp.resolve("report").toString()), "--start-layer 99 is outside [0, ");
        assertThat(tmp.resolve("report")).doesNotExist();
        for (String threads : new String[]{"abc", "0", "100000"}) {
            String before = System.getProperty("mambalens.threads");
            System.setProperty("mambalens.threads", threads);
            try {
                expectUsageError(run("generate", "--token-ids", "1"), "-Dmambalens.threads=" + threads);
            } finally {
                if (before == null) System.clearProperty("mambalens.threads");
                else System.setProperty("mambalens.threads", before);
            }
        }
    }

    @Test
    void errorsSayWhatIsWrongWithoutJavasClassNames() {
        org.mambalens.engine.io.CheckpointException file = new org.mambalens.engine.io.CheckpointException(Path.of("m/config.json"), "bad");
        assertThat(Main.oneLine(new IllegalStateException(file))).isEqualTo("m/config.json: bad");
        assertThat(Main.oneLine(new java.io.UncheckedIOException(new java.nio.file.AccessDeniedException("/x")))).isEqualTo("/x: permission denied");
        assertThat(Main.oneLine(new OutOfMemoryError("Java heap space"))).startsWith("out of memory (the Java heap is ").contains("-Xmx");
        assertThat(Main.oneLine(new NullPointerException())).startsWith("internal error (NullPointerException); please report it");
        assertThat(Main.oneLine(new NumberFormatException("For input string: \"x\""))).startsWith("internal error");
    }

    @Test
    void tooManyNewTokensAreRefusedUpFrontInWords() {
        Path neox = Fixtures.repository().resolve("models/gptneox-fortunes");
        CliTest.Result r = run("generate", "--model", neox.toString(), "--token-ids", "1", "--max-new-tokens", "2147483647", "--print-ids");
        expectOneLineError(r, "max_position_embeddings");
        assertThat(r.err()).doesNotContain("-2147483647");
    }

    @Test
    void aMissingModelDirectoryIsNamed() {
        CliTest.Result r = run("forward", "--model", "/nonexistent", "--token-ids", "1", "--out", tmp.resolve("x.npy").toString());
        expectOneLineError(r, "/nonexistent: no such file or directory");
        assertThat(r.err()).doesNotContain("/config.json");
    }

    @Test
    void forwardOnATextClassifierWritesItsScoresAtEveryPosition() {
        Path out = tmp.resolve("scores.npy");
        CliTest.Result r = run("forward", "--model", Fixtures.repository().resolve("models/mamba-fortunes-topics").toString(), "--token-ids", "5,6,7",
                "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Npy.readFloat32(out).shape()).containsExactly(3, 5);
    }

    @Test
    void generatedTextHoldsNoSpecialTokens() {
        CliTest.Result r = run("generate", "--token-ids", "0,0", "--max-new-tokens", "3", "--ignore-eos");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).doesNotContain("<|endoftext|>");
        assertThat(run("generate", "--token-ids", "0,0", "--max-new-tokens", "1", "--ignore-eos", "--print-ids").out()).startsWith("0,0,");
    }

    @Test
    void hostileConfigsAreRefusedBeforeAnythingIsAllocated() throws IOException {
        for (String value : new String[]{"1000000000", "2147483647", "1e9", "-1"}) {
            Path dir = copyWithConfig(MAMBA, "num_hidden_layers", value);
            expectOneLineError(run("forward", "--model", dir.toString(), "--token-ids", "1", "--out", tmp.resolve("x.npy").toString()), "\"num_hidden_layers\"");
        }
        Path vim = copyWithConfig(Fixtures.golden().resolve("vim/vim_small"), "depth", "2147483647");
        expectOneLineError(run("classify", "--model", vim.toString(), "--pixels", vim.resolve("pixels.npy").toString()), "\"depth\"");
        expectOneLineError(run("generate", "--model", copyWithConfig(MAMBA, "eos_token_id", "99999").toString(), "--token-ids", "1"),
                "\"eos_token_id\" 99999 is outside the vocabulary");
        Path classifier = copyWithConfig(Fixtures.repository().resolve("models/mamba-fortunes-topics"), "pad_token_id", "99999");
        expectOneLineError(run("classify", "--model", classifier.toString(), "--text", "hello"), "\"pad_token_id\" 99999 is outside the vocabulary");
        assertThat(tmp.resolve("x.npy")).doesNotExist();
    }

    @Test
    void nonFiniteInputsAreRefusedNotTurnedIntoNaNProbabilities() throws IOException {
        Npy.Array pixels = Npy.readFloat32(VIT.resolve("pixels.npy"));
        float[] data = pixels.data().clone();
        data[7] = Float.NaN;
        Path nan = tmp.resolve("nan.npy");
        Npy.writeFloat32(nan, data, pixels.shape());
        expectOneLineError(run("classify", "--model", VIT.toString(), "--pixels", nan.toString()), "--pixels " + nan);
    }

    @Test
    void nonFiniteWeightsAreRefusedNotTurnedIntoNaNProbabilities() throws IOException {
        Path model = copy(VIT);
        try (org.mambalens.engine.io.Checkpoint original = org.mambalens.engine.io.Checkpoint.open(VIT)) {
            org.mambalens.engine.io.SafetensorsWriter writer = new org.mambalens.engine.io.SafetensorsWriter();
            for (String name : original.names()) {
                org.mambalens.engine.io.TensorInfo info = original.info(name);
                byte[] bytes = original.tensor(name).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                if (name.equals("classifier.bias")) java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(0, Float.NaN);
                writer.add(name, info.dtype(), info.shape(), bytes);
            }
            writer.write(model.resolve("model.safetensors"));
        }
        expectOneLineError(run("classify", "--model", model.toString(), "--pixels", VIT.resolve("pixels.npy").toString()), "weights hold NaN");
    }

    @Test
    void preprocessorConfigValuesAreCheckedAndItsAbsenceIsSaid() throws IOException {
        Path image = Fixtures.repository().resolve(ExplainCommand.BUNDLED_IMAGE);
        Path model = copy(Fixtures.repository().resolve("models/vit-fashion"));
        Path preprocessor = model.resolve("preprocessor_config.json");
        ObjectNode original = (ObjectNode) new ObjectMapper().readTree(preprocessor.toFile());
        for (String[] bad : new String[][]{{"image_std", "[0]"}, {"rescale_factor", "\"x\""}, {"image_mean", "[\"a\"]"}, {"do_rescale", "\"yes\""}}) {
            ObjectNode edited = original.deepCopy();
            edited.set(bad[0], new ObjectMapper().readTree(bad[1]));
            Files.writeString(preprocessor, edited.toString());
            expectOneLineError(run("classify", "--model", model.toString(), "--image", image.toString()), "\"" + bad[0] + "\"");
        }
        Files.delete(preprocessor);
        CliTest.Result r = run("classify", "--model", model.toString(), "--image", image.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("has no preprocessor_config.json");
    }

    @Test
    void classifyWritesTheFashionMnistLogitsItWasAskedFor() {
        assumeTrue(FashionMnist.available(FashionMnist.DEBIAN), "Fashion-MNIST is not installed at " + FashionMnist.DEBIAN);
        Path out = tmp.resolve("logits.npy");
        CliTest.Result r = run("classify", "--fashion-mnist", "--limit", "3", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Npy.readFloat32(out).shape()).containsExactly(3, 10);
    }

    @Test
    void convertDoesNotOverwriteWithoutForce() throws IOException {
        Path pth = Fixtures.repository().resolve("weights-tools/src/test/resources/pth/vim_tiny.pth");
        Path out = Files.createDirectories(tmp.resolve("converted"));
        Files.writeString(out.resolve("model.safetensors"), "mine");
        expectOneLineError(run("convert", pth.toString(), out.toString()), "give --force");
        assertThat(out.resolve("model.safetensors")).hasContent("mine");
        CliTest.Result forced = run("convert", pth.toString(), out.toString(), "--force");
        assertThat(forced.code()).as(forced.err()).isZero();
    }

    @Test
    void aFifoIsRefusedInsteadOfWaitedOn() throws Exception {
        Path fifo = tmp.resolve("fifo.safetensors");
        assumeTrue(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0, "mkfifo is not available");
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> expectOneLineError(run("inspect", fifo.toString()), "not a regular file"));
    }

    @Test
    void outputsAreWrittenAsTheShellWouldAndFailuresLeaveNothing() throws IOException {
        String ids = "1,2,3";
        Path target = tmp.resolve("logits.npy"), link = Files.createSymbolicLink(tmp.resolve("link.npy"), target.getFileName());
        Files.writeString(target, "old");
        Files.setPosixFilePermissions(target, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        assertThat(run("forward", "--model", MAMBA.toString(), "--token-ids", ids, "--out", link.toString()).code()).isZero();
        assertThat(Files.isSymbolicLink(link)).isTrue();
        assertThat(Npy.readFloat32(target).shape()).containsExactly(3, MAMBA_VOCAB);
        assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(target))).isEqualTo("rw-r--r--");
        Path dir = Files.createDirectories(tmp.resolve("dir"));
        expectOneLineError(run("forward", "--model", MAMBA.toString(), "--token-ids", ids, "--out", dir.toString()), "is a directory");
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left).isEmpty();
        }
        Path report = tmp.resolve("report");
        Path notSquare = tmp.resolve("wide.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(28, 14, java.awt.image.BufferedImage.TYPE_BYTE_GRAY), "png", notSquare.toFile());
        expectOneLineError(run("explain", "--image", notSquare.toString(), "--out", report.toString()), "not square");
        Path small = tmp.resolve("small.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(8, 8, java.awt.image.BufferedImage.TYPE_BYTE_GRAY), "png", small.toFile());
        expectOneLineError(run("explain", "--image", small.toString(), "--out", report.toString()), "px images");
        assertThat(report).doesNotExist();
        try (Stream<Path> left = Files.list(tmp)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(name -> name.startsWith("."));
        }
    }

    @Test
    void longAttentionWorkSaysItsSizeUpFrontOrIsRefusedBeforeItStarts() {
        Path out = tmp.resolve("a.npy");
        CliTest.Result r = run("attention", "--model", MAMBA.toString(), "--token-ids", "1,2,3,4", "--layer", "1", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("writing " + out + ": float32 [128, 4, 4]", "8.2 kB", "128/128 channels");
        String text = "word ".repeat(50_000);
        Path report = tmp.resolve("figure");
        expectOneLineError(run("compare-attention", "--text", text, "--tokens", "50000", "--out", report.toString()), "--tokens 50000");
        assertThat(report).doesNotExist();
    }

    private static final int MAMBA_VOCAB = Fixtures.json(MAMBA.resolve("config.json")).get("vocab_size").asInt();

    /** Under -Xmx256m in a JVM of its own: a huge image header or config is refused in one line, not an OutOfMemoryError. */
    @Test
    void hostileSizesAreRefusedInOneLineUnderASmallHeap() throws Exception {
        Path huge = tmp.resolve("huge.png");
        Files.write(huge, pngHeader(50_000, 50_000));
        Isolated r = runIsolated("-Xmx256m", "classify", "--model", Fixtures.repository().resolve("models/vit-fashion").toString(), "--image", huge.toString());
        assertThat(r.code()).as(r.err()).isEqualTo(1);
        assertThat(r.err().strip()).contains("huge.png", "50000 × 50000", "-Xmx").doesNotContain("\n").doesNotContain("Exception");
        String manyIds = String.join(",", java.util.Collections.nCopies(20_000, "5"));
        r = runIsolated("-Xmx256m", "forward", "--model", Fixtures.repository().resolve("models/mamba-fortunes").toString(), "--token-ids", manyIds, "--out", tmp.resolve("x.npy").toString());
        assertThat(r.code()).as(r.err()).isEqualTo(1);
        assertThat(r.err().strip()).contains("--token-ids (20000 tokens", "-Xmx").doesNotContain("\n");
        Path deep = copyWithConfig(MAMBA, "num_hidden_layers", "1000000000");
        r = runIsolated("-Xmx256m", "forward", "--model", deep.toString(), "--token-ids", "1", "--out", tmp.resolve("x.npy").toString());
        assertThat(r.code()).as(r.err()).isEqualTo(1);
        assertThat(r.err().strip()).contains("num_hidden_layers").doesNotContain("\n");
    }

    /** README's reproducibility promise across kernel thread counts (fixed per JVM, so one JVM each): logits and gradients. */
    @Test
    void resultsAreBitIdenticalAcrossKernelThreadCounts() throws Exception {
        String ids = java.util.stream.IntStream.range(0, 300).mapToObj(i -> String.valueOf((i * 37) % 4000 + 5)).collect(java.util.stream.Collectors.joining(","));
        byte[] logits = null, explanation = null;
        for (String threads : new String[]{"1", "2", "16"}) {
            Path out = tmp.resolve("logits-" + threads + ".npy"), report = tmp.resolve("report-" + threads);
            Isolated forward = runIsolated("-Dmambalens.threads=" + threads, "forward", "--token-ids", ids, "--out", out.toString());
            assertThat(forward.code()).as(forward.err()).isZero();
            Isolated explain = runIsolated("-Dmambalens.threads=" + threads, "explain", "--text", "The computer said that the answer was",
                    "--method", "attribution", "--out", report.toString());
            assertThat(explain.code()).as(explain.err()).isZero();
            byte[] l = Files.readAllBytes(out), e = Files.readAllBytes(report.resolve("explanation.json"));
            if (logits == null) {
                logits = l;
                explanation = e;
            }
            assertThat(l).as("logits with " + threads + " threads").isEqualTo(logits);
            assertThat(e).as("attribution with " + threads + " threads").isEqualTo(explanation);
        }
    }

    record Isolated(int code, String err) {
    }

    private static Isolated runIsolated(String option, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), option,
                "--add-modules", "jdk.incubator.vector", "-Dmambalens.home=" + Fixtures.repository(), "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        int code = p.waitFor();
        return new Isolated(code, err.lines().filter(l -> !l.contains("incubator modules")).reduce("", (a, b) -> a + b + "\n"));
    }

    /** A PNG whose header claims {@code width × height} gray pixels, with no pixel data: what a hostile file can say in 60 bytes. */
    static byte[] pngHeader(int width, int height) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.write(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteArrayOutputStream ihdr = new ByteArrayOutputStream();
        DataOutputStream h = new DataOutputStream(ihdr);
        h.writeBytes("IHDR");
        h.writeInt(width);
        h.writeInt(height);
        h.write(new byte[]{8, 0, 0, 0, 0});
        out.writeInt(13);
        out.write(ihdr.toByteArray());
        CRC32 crc = new CRC32();
        crc.update(ihdr.toByteArray());
        out.writeInt((int) crc.getValue());
        out.writeInt(0);
        out.writeBytes("IEND");
        crc.reset();
        crc.update("IEND".getBytes(StandardCharsets.US_ASCII));
        out.writeInt((int) crc.getValue());
        return bytes.toByteArray();
    }

    private Path copy(Path dir) throws IOException {
        Path to = Files.createTempDirectory(tmp, dir.getFileName().toString());
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    /** A copy of the model with one config.json value replaced (written as JSON text). */
    private Path copyWithConfig(Path dir, String key, String json) throws IOException {
        Path to = copy(dir);
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode config = (ObjectNode) mapper.readTree(to.resolve("config.json").toFile());
        config.set(key, mapper.readTree(json));
        Files.writeString(to.resolve("config.json"), config.toString());
        return to;
    }
}
