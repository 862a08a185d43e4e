package org.mambalens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/** The command-line contract: the commands, flags and outputs that scripts rely on. */
class CliTest {
    @TempDir
    Path tmp;

    record Result(int code, String out, String err) {
    }

    static synchronized Result run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            System.setProperty("mambalens.home", Fixtures.repository().toString());
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    static String ids(JsonNode array) {
        return IntStream.of(Fixtures.ints(array)).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"mamba/untied_bf16", "gptneox/neox_sequential_bf16", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_bf16",
            "griffin/griffin_bf16"})
    void forwardWritesTheReferenceLogitsAsNpy(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        JsonNode ref = Fixtures.json(dir.resolve("reference.json"));
        Path out = tmp.resolve("logits.npy");
        Result r = run("forward", "--model", dir.toString(), "--token-ids", ids(ref.get("token_ids")), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        Npy.Array got = Npy.readFloat32(out), expected = Npy.readFloat32(dir.resolve("logits.npy"));
        assertThat(got.shape()).containsExactly(expected.shape());
        assertThat(Fixtures.relativeError(got.data(), expected.data())).isLessThan(1e-4);
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"mamba/bias_untied_f16", "gptneox/neox_parallel_f32", "mamba2/mamba2_f32", "rwkv/rwkv_f32",
            "griffin/griffin_f32"})
    void generatePrintIdsGivesTheReferenceGreedyContinuation(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        JsonNode ref = Fixtures.json(dir.resolve("reference.json"));
        int total = ref.get("greedy_ids").size(), prompt = ref.get("greedy_prompt").size();
        Result r = run("generate", "--model", dir.toString(), "--token-ids", ids(ref.get("greedy_prompt")),
                "--max-new-tokens", String.valueOf(total - prompt), "--min-new-tokens", String.valueOf(total - prompt), "--greedy", "--print-ids");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out().strip()).isEqualTo(ids(ref.get("greedy_ids")));
    }

    @Test
    void generateWithTheBundledModelStreamsText() {
        JsonNode ref = Fixtures.json(Fixtures.golden().resolve("demo/reference.json"));
        Result r = run("generate", "--prompt", ref.get("prompt").asText(), "--max-new-tokens", "12", "--greedy");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).startsWith(ref.get("prompt").asText()).isEqualTo(ref.get("greedy_text").asText().substring(0, r.out().length() - 1) + "\n");
        Result sampled = run("generate", "--prompt", "Computers", "--max-new-tokens", "20", "--temperature", "0.8", "--top-p", "0.9", "--seed", "5", "--print-ids");
        assertThat(sampled.code()).isZero();
        assertThat(run("generate", "--prompt", "Computers", "--max-new-tokens", "20", "--temperature", "0.8", "--top-p", "0.9", "--seed", "5", "--print-ids").out())
                .isEqualTo(sampled.out());
        expectOneLineError(run("generate", "--prompt", "Computers", "--max-new-tokens", "2", "--temperature", "Infinity"), "--temperature must be a finite number");
        expectOneLineError(run("generate", "--prompt", "Computers", "--max-new-tokens", "2", "--min-new-tokens", "5"),
                "--min-new-tokens 5 is more than --max-new-tokens 2");
    }

    /** --prompts-ids and --prompts: every line's output is the one `generate` prints for that prompt alone, in order. */
    @Test
    void generateSeveralPromptsGivesEachItsOwnContinuation() throws IOException {
        String[] prompts = {"The", "Computers are", "A long time ago in a"};
        String[] options = {"--max-new-tokens", "9", "--min-new-tokens", "2", "--greedy", "--print-ids"};
        Path ids = tmp.resolve("prompts.ids"), texts = tmp.resolve("prompts.txt");
        StringBuilder idLines = new StringBuilder();
        String[] alone = new String[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            Result one = run(concat(new String[]{"generate", "--prompt", prompts[i]}, options));
            assertThat(one.code()).as(one.err()).isZero();
            alone[i] = one.out().strip();
            String promptIds = run("generate", "--prompt", prompts[i], "--max-new-tokens", "0", "--print-ids").out().strip();
            idLines.append(promptIds).append('\n');
        }
        Files.writeString(ids, idLines.toString());
        Files.writeString(texts, String.join("\n", prompts) + "\n");
        for (String[] input : new String[][]{{"--prompts-ids", ids.toString()}, {"--prompts", texts.toString()},
                {"--prompts", texts.toString(), "--batch-size", "2"}}) {
            Result together = run(concat(concat(new String[]{"generate"}, input), options));
            assertThat(together.code()).as(together.err()).isZero();
            assertThat(together.out().strip().split("\n")).containsExactly(alone);
            assertThat(together.err()).contains("[3 prompts");
        }
        Result json = run("generate", "--prompts", texts.toString(), "--max-new-tokens", "4");
        assertThat(json.out().strip().split("\n")).hasSize(3).allSatisfy(line -> assertThat(line).startsWith("{\"index\":").contains("\"text\":"));

        Files.writeString(ids, "1,2\n\n3\n");
        expectOneLineError(run("generate", "--prompts-ids", ids.toString()), "line 2");
        Files.writeString(ids, "");
        expectOneLineError(run("generate", "--prompts-ids", ids.toString()), "no prompts");
        expectOneLineError(run("generate", "--prompts", tmp.resolve("absent.txt").toString()), "absent.txt");
    }

    private static String[] concat(String[] a, String[] b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    @Test
    void inspectListsTensorsAndCounts() {
        Result r = run("inspect", Fixtures.golden().resolve("mamba/tied_f32").toString());
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("backbone.layers.1.mixer.A_log", "F32", "[128, 8]", "parameters");
    }

    @Test
    void badInputGivesOneLineNamingTheFileOrArgument() throws IOException {
        Path broken = tmp.resolve("broken.safetensors");
        Files.write(broken, new byte[]{0x10, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'w'});
        expectOneLineError(run("inspect", broken.toString()), "broken.safetensors");
        expectOneLineError(run("inspect", tmp.resolve("missing.safetensors").toString()), "missing.safetensors");
        expectOneLineError(run("forward", "--model", tmp.toString(), "--token-ids", "1,2", "--out", tmp.resolve("x.npy").toString()), "config.json");
        Path model = Fixtures.golden().resolve("mamba/tied_f32");
        expectOneLineError(run("forward", "--model", model.toString(), "--token-ids", "1,x", "--out", tmp.resolve("x.npy").toString()), "--token-ids");
        expectOneLineError(run("forward", "--model", model.toString(), "--token-ids", "1,99999", "--out", tmp.resolve("x.npy").toString()), "99999");
        assertThat(tmp.resolve("x.npy")).doesNotExist();
        Files.writeString(tmp.resolve("config.json"), "{\"model_type\": \"llama\"}");
        expectOneLineError(run("forward", "--model", tmp.toString(), "--token-ids", "1", "--out", tmp.resolve("x.npy").toString()), "supported: gpt_neox, mamba, mamba2, recurrent_gemma, rwkv");
        assertThat(run("generate", "--prompt", "a", "--token-ids", "1").code()).isEqualTo(2);
    }

    @Test
    void deviceAndPrecisionSayInOneLineWhatCannotRunHere() {
        Path model = Fixtures.golden().resolve("mamba/tied_f32"), out = tmp.resolve("x.npy");
        JsonNode ref = Fixtures.json(model.resolve("reference.json"));
        String ids = ids(ref.get("token_ids"));
        expectOneLineError(run("forward", "--model", model.toString(), "--token-ids", ids, "--precision", "bf16", "--out", out.toString()),
                "--precision bf16");
        assertThat(out).doesNotExist();
        String noGpu = org.mambalens.engine.cuda.Gpu.unavailableReason();
        if (noGpu != null) {
            Result cuda = run("forward", "--model", model.toString(), "--token-ids", ids, "--device", "cuda", "--out", out.toString());
            expectOneLineError(cuda, noGpu);
            assertThat(cuda.err()).contains("--device cuda: ").doesNotContain("internal error");
            Result auto = run("forward", "--model", model.toString(), "--token-ids", ids, "--device", "auto", "--precision", "bf16", "--out", out.toString());
            assertThat(auto.code()).as(auto.err()).isZero();
            assertThat(auto.err()).contains("running on the CPU in F32");
            assertThat(Fixtures.relativeError(Npy.readFloat32(out).data(), Npy.readFloat32(model.resolve("logits.npy")).data())).isLessThan(1e-4);
        } else {
            Result cuda = run("forward", "--model", model.toString(), "--token-ids", ids, "--device", "cuda", "--precision", "bf16", "--out", out.toString());
            assertThat(cuda.code()).as(cuda.err()).isZero();
            assertThat(Fixtures.relativeError(Npy.readFloat32(out).data(), Npy.readFloat32(model.resolve("logits.npy")).data())).isLessThan(1.5e-2);
        }
    }

    /** serve's own tests start the server in-process (ExplorerServerTest); here, its refusals before it listens. */
    @Test
    void serveRefusesWhatItCannotServeInOneLine() throws IOException {
        expectOneLineError(run("serve", "--port", "0", "--models", tmp.resolve("none").toString()), "--models " + tmp.resolve("none") + " is not a directory");
        expectOneLineError(run("serve", "--port", "0", "--threads", "0"), "--threads must be at least 1");
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            expectOneLineError(run("serve", "--port", String.valueOf(taken.getLocalPort())), "ddress already in use");
        }
    }

    static void expectOneLineError(Result r, String mentions) {
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.err().strip()).contains(mentions).doesNotContain("\n").doesNotContain("Exception");
    }

    @Test
    void convertRefusesAHostilePickleAndWritesNothing() {
        Path pth = Fixtures.repository().resolve("weights-tools/src/test/resources/pth");
        Path out = tmp.resolve("converted");
        expectOneLineError(run("convert", pth.resolve("os_system.pth").toString(), out.toString()), "refusing to load global posix.system");
        assertThat(out).doesNotExist();
        Result ok = run("convert", pth.resolve("vim_tiny.pth").toString(), out.toString());
        assertThat(ok.code()).as(ok.err()).isZero();
        assertThat(out.resolve("model.safetensors")).exists();
        assertThat(out.resolve("config.json")).exists();
    }

    @Test
    void classifyWritesTheReferenceLogits() {
        Path dir = Fixtures.golden().resolve("vit/vit_small");
        Path out = tmp.resolve("logits.npy");
        Result r = run("classify", "--model", dir.toString(), "--pixels", dir.resolve("pixels.npy").toString(), "--top", "3", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("image 0:", "image 1:", "LABEL_");
        assertThat(Fixtures.relativeError(Npy.readFloat32(out).data(), Npy.readFloat32(dir.resolve("logits.npy")).data())).isLessThan(1e-4);
        expectOneLineError(run("classify", "--model", dir.toString(), "--pixels", Fixtures.golden().resolve("vit/vit_gray_odd/pixels.npy").toString()),
                "the model takes [N, 3, 32, 32]");
    }

    @Test
    void attentionWritesTheLayerTensors() {
        // ViT: the softmax probabilities transformers returned
        Path vit = Fixtures.golden().resolve("vit/vit_small");
        Path out = tmp.resolve("a.npy");
        Result r = run("attention", "--model", vit.toString(), "--pixels", vit.resolve("pixels.npy").toString(), "--layer", "1", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Fixtures.relativeError(Npy.readFloat32(out).data(), Npy.readFloat32(vit.resolve("attn_1.npy")).data())).isLessThan(1e-5);
        // Vision Mamba: both directions = forward + flip(backward); the unified form has the same shape
        Path vim = Fixtures.golden().resolve("vim/vim_small");
        float[][] maps = new float[3][];
        String[] dirs = {"forward", "backward", "both"};
        for (int d = 0; d < 3; d++) {
            Path f = tmp.resolve(dirs[d] + ".npy");
            assertThat(run("attention", "--model", vim.toString(), "--pixels", vim.resolve("pixels.npy").toString(), "--layer", "0",
                    "--direction", dirs[d], "--out", f.toString()).code()).isZero();
            Npy.Array a = Npy.readFloat32(f);
            assertThat(a.shape()).containsExactly(64, 17, 17);
            maps[d] = a.data();
        }
        for (int k = 0; k < maps[2].length; k++) assertThat(maps[2][k]).isCloseTo(maps[0][k] + maps[1][k], org.assertj.core.data.Offset.offset(1e-5f));
        assertThat(run("attention", "--model", vim.toString(), "--pixels", vim.resolve("pixels.npy").toString(), "--layer", "1",
                "--unified", "--out", tmp.resolve("u.npy").toString()).code()).isZero();
        assertThat(Npy.readFloat32(tmp.resolve("u.npy")).shape()).containsExactly(64, 17, 17);
        // the language model, and bad arguments
        Path lm = Fixtures.golden().resolve("mamba/tied_f32");
        assertThat(run("attention", "--model", lm.toString(), "--token-ids", "1,2,3,4", "--layer", "1", "--out", tmp.resolve("lm.npy").toString()).code()).isZero();
        assertThat(Npy.readFloat32(tmp.resolve("lm.npy")).shape()).containsExactly(128, 4, 4);
        expectOneLineError(run("attention", "--model", lm.toString(), "--token-ids", "1,2", "--layer", "7", "--out", tmp.resolve("x.npy").toString()), "--layer 7");
        expectOneLineError(run("attention", "--model", lm.toString(), "--token-ids", "1,2", "--layer", "0", "--direction", "backward",
                "--out", tmp.resolve("x.npy").toString()), "forward only");
        expectOneLineError(run("attention", "--model", vit.toString(), "--pixels", vit.resolve("pixels.npy").toString(), "--layer", "0",
                "--unified", "--out", tmp.resolve("x.npy").toString()), "--unified");
        assertThat(tmp.resolve("x.npy")).doesNotExist();
    }

    @Test
    void attentionOfAGptNeoXLayerIsTheSoftmaxProbabilities() {
        Path dir = Fixtures.golden().resolve("gptneox/neox_parallel_f32");
        Path out = tmp.resolve("neox_attn.npy");
        Result r = run("attention", "--model", dir.toString(), "--token-ids", ids(Fixtures.json(dir.resolve("reference.json")).get("token_ids")),
                "--layer", "1", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        Npy.Array got = Npy.readFloat32(out), expected = Npy.readFloat32(dir.resolve("attn_1.npy"));
        assertThat(got.shape()).containsExactly(4, 40, 40);
        assertThat(Fixtures.relativeError(got.data(), expected.data())).isLessThan(1e-4);
        expectOneLineError(run("attention", "--model", dir.toString(), "--token-ids", "1,2,3", "--layer", "0", "--unified",
                "--out", tmp.resolve("u.npy").toString()), "--unified");
        expectOneLineError(run("explain", "--model", Fixtures.golden().resolve("vit/vit_small").toString(), "--text", "hello",
                "--out", tmp.resolve("t").toString()), "language models");
        Path mamba2 = Fixtures.golden().resolve("mamba2/mamba2_f32");
        Path heads = tmp.resolve("mamba2_attn.npy");
        Result m = run("attention", "--model", mamba2.toString(), "--token-ids", "5,6,7,8,9", "--layer", "1", "--out", heads.toString());
        assertThat(m.code()).as(m.err()).isZero();
        assertThat(Npy.readFloat32(heads).shape()).containsExactly(8, 5, 5);
        Result u = run("attention", "--model", mamba2.toString(), "--token-ids", "5,6,7,8,9", "--layer", "0", "--unified", "--out", heads.toString());
        assertThat(u.code()).as(u.err()).isZero();
        assertThat(Npy.readFloat32(heads).shape()).containsExactly(128, 5, 5);
        Result rw = run("attention", "--model", Fixtures.golden().resolve("rwkv/rwkv_f32").toString(), "--token-ids", "5,6,7", "--layer", "1",
                "--out", heads.toString());
        assertThat(rw.code()).as(rw.err()).isZero();
        assertThat(Npy.readFloat32(heads).shape()).containsExactly(64, 3, 3);
        // Griffin: RG-LRU channels (α, or the unified operator), and the local-attention layer's softmax as transformers gave it
        Path griffin = Fixtures.golden().resolve("griffin/griffin_bf16");
        for (String unified : new String[]{"--layer", "--unified"}) {
            String[] args = unified.equals("--unified") ? new String[]{"attention", "--model", griffin.toString(), "--token-ids", "5,6,7,8,9", "--layer", "0", "--unified", "--out", heads.toString()}
                    : new String[]{"attention", "--model", griffin.toString(), "--token-ids", "5,6,7,8,9", "--layer", "0", "--out", heads.toString()};
            Result g = run(args);
            assertThat(g.code()).as(g.err()).isZero();
            assertThat(Npy.readFloat32(heads).shape()).containsExactly(96, 5, 5);
        }
        Result ga = run("attention", "--model", griffin.toString(), "--token-ids", ids(Fixtures.json(griffin.resolve("reference.json")).get("token_ids")),
                "--layer", "1", "--out", heads.toString());
        assertThat(ga.code()).as(ga.err()).isZero();
        Npy.Array probs = Npy.readFloat32(heads);
        assertThat(probs.shape()).containsExactly(4, 40, 40);
        assertThat(Fixtures.relativeError(probs.data(), Npy.readFloat32(griffin.resolve("attn_1.npy")).data())).isLessThan(1e-4);
    }

    @Test
    void explainWithTheBundledModelsWritesTheReport() throws Exception {
        Path out = tmp.resolve("explain");
        Result r = run("explain", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readString(out.resolve("report.html"))).contains("vim-placed_raw.png", "vit-placed_rollout.png",
                "vim-placed_attribution.png", "vit-placed_attribution.png", "test-0000-ankle-boot.png");
        for (String f : new String[]{"vim-placed_raw", "vim-placed_rollout", "vim-placed_attribution", "vit-placed_raw",
                "vit-placed_rollout", "vit-placed_attribution"}) {
            assertThat(out.resolve(f + ".png")).exists();
            Npy.Array map = Npy.readFloat32(out.resolve(f + ".npy"));
            assertThat(map.shape()).containsExactly(64, 64);
            float max = 0;
            for (float v : map.data()) max = Math.max(max, v);
            assertThat(max).isEqualTo(1f);                                   // min-max normalised
        }
        assertThat(out.resolve("vim-placed_layer5_matrix.png")).exists();
        // The older 28×28 pair by flags, on its own default image.
        Path old = tmp.resolve("old");
        Result o = run("explain", "--model", Fixtures.repository().resolve("models/vim-fashion").toString(), "--model",
                Fixtures.repository().resolve("models/vit-fashion").toString(), "--method", "raw", "--out", old.toString());
        assertThat(o.code()).as(o.err()).isZero();
        assertThat(Npy.readFloat32(old.resolve("vim-fashion_raw.npy")).shape()).containsExactly(28, 28);
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(old.resolve("explanation.json").toFile());
        assertThat(json.get("models").get(0).get("label").asText()).isEqualTo("Ankle boot");
        Path bad = tmp.resolve("bad.png");
        Files.writeString(bad, "nope");
        expectOneLineError(run("explain", "--image", bad.toString(), "--out", tmp.resolve("e2").toString()), "bad.png: not an image");
        expectOneLineError(run("explain", "--method", "magic", "--out", tmp.resolve("e3").toString()), "--method");
        Path text = tmp.resolve("text");
        Result t = run("explain", "--text", "The best way to predict the future is", "--out", text.toString());
        assertThat(t.code()).as(t.err()).isZero();
        var tj = new com.fasterxml.jackson.databind.ObjectMapper().readTree(text.resolve("explanation.json").toFile());
        assertThat(tj.get("tokens").size()).isEqualTo(tj.get("raw").size()).isEqualTo(tj.get("rollout").size())
                .isEqualTo(tj.get("attribution").size()).isEqualTo(10);
        Path one = tmp.resolve("one");
        assertThat(run("explain", "--method", "attribution", "--out", one.toString()).code()).isZero();
        assertThat(one.resolve("vim-placed_attribution.png")).exists();
        assertThat(one.resolve("vim-placed_raw.png")).doesNotExist();
        assertThat(Files.readString(text.resolve("report.html"))).contains("class=tok", "layer3_matrix.png");
    }

    @Test
    void evaluateWritesTheTablesAndResumes() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(org.mambalens.xai.data.FashionMnist.available(org.mambalens.xai.data.FashionMnist.DEBIAN),
                "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run installs it)");
        Path out = tmp.resolve("evaluate");
        Result r = run("evaluate", "--limit", "3", "--threads", "2", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("results.json").toFile());
        assertThat(json.get("images").asInt()).isEqualTo(3);
        for (String model : new String[]{"vim", "vit"}) {
            for (String method : new String[]{"raw", "rollout", "attribution", "random"}) {
                var m = json.get("models").get(model).get(method);
                for (String key : new String[]{"positive_auc", "negative_auc", "pixel_accuracy", "miou", "map"}) {
                    assertThat(m.get(key).asDouble()).as(model + "/" + method + "/" + key).isBetween(0.0, 100.0);
                }
            }
        }
        assertThat(Files.readString(out.resolve("results.md"))).contains("Positive perturbation AUC", "| attribution |", "| random |");
        assertThat(Files.readAllLines(out.resolve("per_image.csv"))).hasSize(1 + 3 * 2 * 4);
        assertThat(out.resolve("curves_vim.png")).exists();
        assertThat(Files.readString(out.resolve("report.html"))).contains("curves_vit.png");
        // two more images: the three done are not recomputed
        Result more = run("evaluate", "--limit", "5", "--threads", "2", "--out", out.toString());
        assertThat(more.code()).as(more.err()).isZero();
        assertThat(more.err()).contains("resuming: 3 of 5 images already in");
        assertThat(Files.readAllLines(out.resolve("journal.jsonl"))).hasSize(1 + 5);
        expectOneLineError(run("evaluate", "--limit", "5", "--methods", "raw", "--out", out.toString()), "other models, methods or settings");
        expectOneLineError(run("evaluate", "--models", "vim,nowhere", "--out", tmp.resolve("e4").toString()), "--models: nowhere");
        expectOneLineError(run("evaluate", "--methods", "magic", "--out", tmp.resolve("e5").toString()), "--methods: magic");
        // The older 28×28 pair on Fashion-MNIST itself, chosen by their input size; mixing sizes is refused.
        Path old = tmp.resolve("old");
        Result o = run("evaluate", "--models", "vim-fashion,vit-fashion", "--methods", "raw", "--limit", "2", "--threads", "2", "--out", old.toString());
        assertThat(o.code()).as(o.err()).isZero();
        assertThat(Fixtures.json(old.resolve("results.json")).get("dataset").asText()).startsWith("Fashion-MNIST test split");
        assertThat(Fixtures.json(out.resolve("results.json")).get("dataset").asText()).startsWith("placed Fashion-MNIST");
        expectOneLineError(run("evaluate", "--models", "vim,vit-fashion", "--out", tmp.resolve("e6").toString()),
                "vit-fashion (" + Fixtures.repository().resolve("models/vit-fashion") + ") takes 1×28² images, not placed Fashion-MNIST");
        expectOneLineError(run("evaluate", "--data", "cifar", "--out", tmp.resolve("e7").toString()), "--data: cifar");
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        expectOneLineError(run("evaluate", "--limit", "1", "--out", file.toString()), "--out " + file + " is a file, not a directory");
        // more threads than images: one thread an image (a huge --threads used to start that many threads, and hung)
        Result one = run("evaluate", "--limit", "1", "--threads", "2147483647", "--methods", "raw", "--out", tmp.resolve("e8").toString());
        assertThat(one.code()).as(one.err()).isZero();
    }

    /** explain --inputs: one report per listed image, results.json listing them in order. */
    @Test
    void explainInputsWritesAReportPerImage() throws IOException {
        Path list = tmp.resolve("images.txt"), out = tmp.resolve("reports");
        writeString(list, Fixtures.repository().resolve("data/fashion-mnist/test-0002-trouser.png") + "\n\n"
                + Fixtures.repository().resolve("data/fashion-mnist/test-0008-sandal.png") + "\n");
        Result r = run("explain", "--model", Fixtures.repository().resolve("models/vim-fashion").toString(), "--method", "raw",
                "--inputs", list.toString(), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode results = Fixtures.json(out.resolve("results.json"));
        assertThat(results.get("inputs").asInt()).isEqualTo(2);
        assertThat(results.get("reports").get(1).get("report").asText()).isEqualTo("0001-test-0008-sandal/report.html");
        assertThat(out.resolve("0000-test-0002-trouser/report.html")).exists();
        assertThat(out.resolve("0001-test-0008-sandal/vim-fashion_raw.png")).exists();
    }

    /** Without the spark module on the class path (the plain CLI jar), --spark says how to get it. */
    @Test
    void sparkWithoutTheSparkModuleSaysWhereItIs() {
        expectOneLineError(run("evaluate-text", "--limit", "1", "--spark", "local[2]", "--out", tmp.resolve("s").toString()), "spark module is not on the class path");
        expectOneLineError(run("classify", "--texts", "--spark", "local[2]"), "--spark needs --results DIR");
        expectOneLineError(run("explain", "--spark", "local[2]", "--out", tmp.resolve("e").toString()), "--spark explains a list of images");
    }

    /** gradient: ∂logits[P, T]/∂inputs_embeds [L, D] as transformers' autograd gives it (input_gradient_fixtures.py); one-line refusals that write nothing. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"mamba/untied_bf16", "gptneox/neox_parallel_f32", "griffin/griffin_f32"})
    void gradientWritesTheInputEmbeddingGradientAsNpy(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture), out = tmp.resolve("grad.npy");
        JsonNode target = Fixtures.json(dir.resolve("grad_inputs_embeds.json"));
        String ids = ids(target.get("tokens"));
        int L = target.get("tokens").size();
        Result r = run("gradient", "--model", dir.toString(), "--token-ids", ids, "--position", target.get("position").asText(),
                "--target", target.get("target").asText(), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        Npy.Array got = Npy.readFloat32(out), expected = Npy.readFloat32(dir.resolve("grad_inputs_embeds.npy"));
        assertThat(got.shape()).containsExactly(expected.shape());
        assertThat(Fixtures.relativeError(got.data(), expected.data())).isLessThan(1e-4);

        Path none = tmp.resolve("none.npy");
        expectOneLineError(run("gradient", "--model", dir.toString(), "--token-ids", ids, "--position", String.valueOf(L), "--target", "3",
                "--out", none.toString()), "--position " + L);
        expectOneLineError(run("gradient", "--model", dir.toString(), "--token-ids", ids, "--position", "-1", "--target", "3",
                "--out", none.toString()), "--position -1");
        expectOneLineError(run("gradient", "--model", dir.toString(), "--token-ids", ids, "--position", "0", "--target", "300",
                "--out", none.toString()), "--target 300");
        expectOneLineError(run("gradient", "--model", Fixtures.golden().resolve("vit/vit_small").toString(), "--token-ids", "1,2", "--position", "0",
                "--target", "1", "--out", none.toString()), "vit");
        assertThat(none).doesNotExist();
        assertThat(run("gradient", "--model", dir.toString(), "--token-ids", ids, "--target", "3", "--out", none.toString()).code()).isEqualTo(2);
    }

    /** explain --text with attribution (and all methods) on a Griffin model: the fixture with the bundled tokenizer, a text of single-byte tokens. */
    @Test
    void explainTextAttributionWorksForGriffin() throws IOException {
        Path model = tmp.resolve("griffin");
        Files.createDirectories(model);
        for (String f : new String[]{"config.json", "model.safetensors"}) Files.copy(Fixtures.golden().resolve("griffin/griffin_f32").resolve(f), model.resolve(f));
        Files.copy(Fixtures.repository().resolve("models/mamba-fortunes/tokenizer.json"), model.resolve("tokenizer.json"));
        for (String method : new String[]{"attribution", "all"}) {
            Path out = tmp.resolve("griffin-" + method);
            Result r = run("explain", "--model", model.toString(), "--text", "QxJqXjkvwZ", "--method", method, "--out", out.toString());
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.err()).doesNotContain("not available");
            assertThat(out.resolve("report.html")).exists();
        }
    }

    @Test
    void everyCommandHasHelp() {
        for (String c : new String[]{"inspect", "forward", "generate", "classify", "attention", "explain", "compare-attention", "evaluate", "evaluate-text", "convert", "gradient"}) {
            Result r = run(c, "--help");
            assertThat(r.code()).isZero();
            assertThat(r.out()).contains("Usage: mambalens " + c);
        }
    }

    @Test
    void classifyTextWritesTheReferenceLogitsAndPrintsTheLabel() {
        Path dir = Fixtures.golden().resolve("classifiers/neox_cls_sequential_bf16");
        JsonNode ref = Fixtures.json(dir.resolve("reference.json"));
        Path out = tmp.resolve("logits.npy");
        Result r = run("classify", "--model", dir.toString(), "--token-ids", ids(ref.get("token_ids").get(2)), "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        Npy.Array logits = Npy.readFloat32(out), expected = Npy.readFloat32(dir.resolve("logits.npy"));
        assertThat(logits.shape()).containsExactly(1, expected.dim(1));
        float[] row = java.util.Arrays.copyOfRange(expected.data(), 2 * expected.dim(1), 3 * expected.dim(1));
        assertThat(Fixtures.relativeError(logits.data(), row)).isLessThan(1e-4);
        String label = Fixtures.json(dir.resolve("config.json")).get("id2label").get(Integer.toString(org.mambalens.engine.text.Sampler.argmax(row))).asText();
        assertThat(r.out()).startsWith(label + " (30 tokens, read at position 4)");

        Result text = run("classify", "--text", "a large carnivorous feline of the grasslands of Africa", "--top", "2");
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).matches("(?s)(animal|artifact|body|food|location|person|plant|quantity|substance|time) \\(\\d+ tokens, read at position \\d+\\):.*");
        Path results = tmp.resolve("accuracy");
        Result accuracy = run("classify", "--model", Fixtures.repository().resolve("models/gptneox-wordnet").toString(), "--texts", "--limit", "40",
                "--results", results.toString());
        assertThat(accuracy.out()).contains("accuracy").contains("on 40 texts").contains("wordnet-glosses");
        JsonNode written = Fixtures.json(results.resolve("results.json"));
        assertThat(written.get("texts").asInt()).isEqualTo(40);
        assertThat(accuracy.out()).contains(String.format("accuracy %.4f", written.get("accuracy").asDouble()));
        Result byName = run("classify", "--model", "gptneox", "--texts", "--limit", "40");
        assertThat(byName.out()).as("a bundled name is its directory").contains(String.format("accuracy %.4f", written.get("accuracy").asDouble()));
        Result fortunes = run("classify", "--model", Fixtures.repository().resolve("models/gptneox-fortunes-topics").toString(), "--texts",
                Fixtures.repository().resolve("data/fortunes-topics/test.jsonl").toString(), "--limit", "10");
        assertThat(fortunes.out()).contains("on 10 texts");
        expectOneLineError(run("classify", "--model", Fixtures.golden().resolve("gptneox/neox_parallel_f32").toString(), "--text", "x"), "not a text classifier");
        Path bad = tmp.resolve("bad.jsonl");
        writeString(bad, "{\"text\": \"ok\", \"label\": 0}\n{\"text\": \"no label\"}\n");
        expectOneLineError(run("classify", "--texts", bad.toString()), "bad.jsonl: line 2");
    }

    /** compare-attention's numbers are those `attention --layer` writes: the unit mean of |A|, and |A| of the chosen units. */
    @Test
    void compareAttentionWritesTheLayerMeansAndTheChosenUnits() {
        Path out = tmp.resolve("figure");
        Result r = run("compare-attention", "--text", "The compiler crashed and the kernel panicked at dawn", "--tokens", "6", "--chosen", "2",
                "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode figure = Fixtures.json(out.resolve("figure.json"));
        assertThat(figure.get("models")).hasSize(2);
        for (JsonNode model : figure.get("models")) {
            String name = model.get("name").asText();
            int T = model.get("token_ids").size(), L = model.get("layers").asInt();
            assertThat(T).isEqualTo(6);
            Npy.Array means = Npy.readFloat32(out.resolve(name).resolve("layers.npy")), chosen = Npy.readFloat32(out.resolve(name).resolve("chosen.npy"));
            assertThat(means.shape()).containsExactly(L, T, T);
            assertThat(chosen.shape()).containsExactly(L, 2, T, T);
            int layer = L - 1;
            Path full = tmp.resolve(name + ".npy");
            assertThat(run("attention", "--model", Fixtures.repository().resolve("models").resolve(name).toString(), "--token-ids", ids(model.get("token_ids")),
                    "--layer", Integer.toString(layer), "--out", full.toString()).code()).isZero();
            Npy.Array a = Npy.readFloat32(full);
            int C = a.dim(0), size = T * T;
            float[] mean = new float[size];
            double[] share = new double[C];
            for (int c = 0; c < C; c++) {
                double total = 0, off = 0;
                for (int k = 0; k < size; k++) {
                    float v = Math.abs(a.data()[c * size + k]);
                    mean[k] += v / C;
                    total += v;
                    if (k / T != k % T) off += v;
                }
                share[c] = off / total;
            }
            assertThat(Fixtures.relativeError(java.util.Arrays.copyOfRange(means.data(), layer * size, (layer + 1) * size), mean)).isLessThan(1e-5);
            int first = model.get("chosen").get(layer).get(0).asInt();
            for (int c = 0; c < C; c++) assertThat(share[first]).as(name + " unit " + c).isGreaterThanOrEqualTo(share[c] - 1e-6);
            float[] expected = new float[size];
            for (int k = 0; k < size; k++) expected[k] = Math.abs(a.data()[first * size + k]);
            assertThat(Fixtures.relativeError(java.util.Arrays.copyOfRange(chosen.data(), layer * 2 * size, (layer * 2 + 1) * size), expected)).isLessThan(1e-5);
            assertThat(out.resolve(name).resolve("layer" + layer + "_" + model.get("unit").asText() + first + ".png")).exists();
        }
        assertThat(figure.get("models").get(0).get("unit").asText()).isEqualTo("channel");
        assertThat(figure.get("models").get(1).get("unit").asText()).isEqualTo("head");
        expectOneLineError(run("compare-attention", "--tokens", "1", "--out", tmp.resolve("f2").toString()), "--tokens");
        expectOneLineError(run("compare-attention", "--model", Fixtures.golden().resolve("vit/vit_small").toString(), "--out", tmp.resolve("f3").toString()),
                "not a language model");
    }

    /**
     * The WordNet gloss classifiers of Mamba-2, RWKV and Griffin by their bundled names (models/NAME-wordnet): classify a
     * text, and every method of evaluate-text explains their labels.
     */
    @Test
    void everyFamilysWordNetClassifierRunsByItsBundledName() {
        String[] names = {"mamba2", "rwkv", "griffin"};
        for (String name : names) {
            Result r = run("classify", "--model", name, "--text", "a large carnivorous feline of the grasslands of Africa", "--top", "2");
            assertThat(r.code()).as(name + ": " + r.err()).isZero();
            assertThat(r.out()).matches("(?s)(animal|artifact|body|food|location|person|plant|quantity|substance|time) \\(\\d+ tokens, read at position \\d+\\):.*");
        }
        Path out = tmp.resolve("families");
        Result e = run("evaluate-text", "--models", String.join(",", names), "--limit", "1", "--threads", "2", "--out", out.toString());
        assertThat(e.code()).as(e.err()).isZero();
        JsonNode results = Fixtures.json(out.resolve("results.json"));
        for (String name : names) {
            for (String method : new String[]{"raw", "rollout", "attribution"}) {
                assertThat(results.get("models").get(name).get(method).get("activation_auc").asDouble()).as(name + " " + method).isBetween(0.0, 1.0);
            }
        }
    }

    /** evaluate-text's results.json has the contract's shape: models → method → AUCs, random, texts. */
    @Test
    void evaluateTextWritesTheContractsResults() throws IOException {
        Path out = tmp.resolve("eval");
        Result r = run("evaluate-text", "--models", "mamba,gptneox", "--methods", "raw,attribution", "--limit", "2", "--threads", "2", "--out", out.toString());
        assertThat(r.code()).as(r.err()).isZero();
        JsonNode results = Fixtures.json(out.resolve("results.json"));
        assertThat(results.get("texts").asInt()).isEqualTo(2);
        for (String model : new String[]{"mamba", "gptneox"}) {
            for (String method : new String[]{"raw", "attribution"}) {
                JsonNode m = results.get("models").get(model).get(method);
                assertThat(m.get("activation_auc").asDouble()).isBetween(0.0, 1.0);
                assertThat(m.get("pruning_auc").asDouble()).isGreaterThanOrEqualTo(0.0);
                assertThat(m.get("pruning_curve").get(0).asDouble()).as("nothing removed, nothing moved").isCloseTo(0.0, org.assertj.core.data.Offset.offset(1e-4));
            }
            assertThat(results.get("random").get(model).get("activation_auc").asDouble()).isBetween(0.0, 1.0);
            assertThat(out.resolve("curves_" + model + "_activation.png")).exists();
        }
        assertThat(Files.readString(out.resolve("results.md"))).contains("| mamba | attribution |");
        // one text more: the two done are read back from the journal, not recomputed; other settings are refused there
        Result more = run("evaluate-text", "--models", "mamba,gptneox", "--methods", "raw,attribution", "--limit", "3", "--threads", "2",
                "--out", out.toString());
        assertThat(more.code()).as(more.err()).isZero();
        assertThat(more.err()).contains("resuming: 2 of 3 texts already in");
        assertThat(Files.readAllLines(out.resolve("journal.jsonl"))).hasSize(1 + 3);
        assertThat(Fixtures.json(out.resolve("results.json")).get("texts").asInt()).isEqualTo(3);
        expectOneLineError(run("evaluate-text", "--models", "mamba", "--methods", "raw,attribution", "--limit", "3", "--out", out.toString()),
                "other models, methods or settings");
        expectOneLineError(run("evaluate-text", "--methods", "nonsense", "--out", out.toString()), "--methods");
        // The fortune topic classifiers stay reachable, on their own data.
        Path fortunes = tmp.resolve("fortunes");
        Result f = run("evaluate-text", "--models", "mamba-fortunes", "--methods", "raw", "--data",
                Fixtures.repository().resolve("data/fortunes-topics/test.jsonl").toString(), "--limit", "2", "--threads", "2", "--out", fortunes.toString());
        assertThat(f.code()).as(f.err()).isZero();
        assertThat(Fixtures.json(fortunes.resolve("results.json")).get("models").has("mamba-fortunes")).isTrue();
        // A run that fails on its first text (too long for the heap) leaves no directory and no journal behind.
        Path huge = tmp.resolve("huge.jsonl"), failed = tmp.resolve("failed");
        writeString(huge, "{\"text\": \"" + "dog ".repeat(400_000) + "\", \"label\": 0}\n");
        Result refused = run("evaluate-text", "--models", "mamba", "--methods", "raw", "--data", huge.toString(), "--out", failed.toString());
        assertThat(refused.code()).as(refused.err()).isEqualTo(1);
        assertThat(refused.err()).contains("heap");
        assertThat(failed).doesNotExist();
    }

    private static void writeString(Path file, String text) {
        try {
            Files.writeString(file, text);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** The launcher's start-up cache is recorded by this run: every command in it must succeed, or the cache would be partial. */
    @Test
    void theStartupTrainingRunSucceeds() throws Exception {
        PrintStream oldOut = System.out;
        System.setOut(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        try {
            System.setProperty("mambalens.home", Fixtures.repository().toString());
            assertThat(StartupTraining.run()).isEmpty();
        } finally {
            System.setOut(oldOut);
        }
    }

    /**
     * Mamba-2 and RWKV-4 are explained by every method, attribution through their reverse passes: `explain --text`
     * with --method attribution and all, and compare-attention, on a fixture given the bundled tokenizer (its
     * vocabulary widened to the tokenizer's with small random embedding rows); and so is a classifier made of it (a
     * random score over the WordNet glosses' ten labels), by explain and evaluate-text.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32"})
    void mamba2AndRwkvAreExplainedByAttribution(String fixture) throws IOException {
        Path model = withBundledTokenizer(Fixtures.golden().resolve(fixture), tmp.resolve("model"));
        String text = "The compiler crashed and the kernel panicked at dawn";
        for (String method : new String[]{"attribution", "all"}) {
            Path out = tmp.resolve(method);
            Result r = run("explain", "--model", model.toString(), "--text", text, "--method", method, "--out", out.toString());
            assertThat(r.code()).as(r.err()).isZero();
            JsonNode json = Fixtures.json(out.resolve("explanation.json"));
            JsonNode attribution = json.get("attribution");
            int T = json.get("tokens").size();
            assertThat(attribution).hasSize(T);
            double max = 0;
            for (JsonNode v : attribution) max = Math.max(max, v.asDouble());
            assertThat(max).as("a relevance row, not zeros").isGreaterThan(0);
            if (method.equals("all")) assertThat(json.get("raw")).hasSize(T);
            assertThat(Files.readString(out.resolve("report.html"))).contains("class=tok");
        }
        Result figure = run("compare-attention", "--model", model.toString(), "--text", text, "--tokens", "6", "--chosen", "2",
                "--out", tmp.resolve("figure").toString());
        assertThat(figure.code()).as(figure.err()).isZero();
        assertThat(Npy.readFloat32(tmp.resolve("figure/model/layers.npy")).dim(1)).isEqualTo(6);

        String family = Fixtures.json(model.resolve("config.json")).get("model_type").asText();
        int D = Fixtures.json(model.resolve("config.json")).get("hidden_size").asInt(), labels = 10;
        java.util.Random random = new java.util.Random(2);
        float[] score = new float[labels * D];
        for (int k = 0; k < score.length; k++) score[k] = (float) random.nextGaussian();
        Path classifier = org.mambalens.engine.model.ClassifierCheckpoint.write(model, tmp.resolve("classifier"),
                family.equals("rwkv") ? "RwkvForSequenceClassification" : "Mamba2ForSequenceClassification", score, labels, 1);
        Files.copy(model.resolve("tokenizer.json"), classifier.resolve("tokenizer.json"));
        Result explained = run("explain", "--model", classifier.toString(), "--text", text, "--target", "3", "--out", tmp.resolve("c1").toString());
        assertThat(explained.code()).as(explained.err()).isZero();
        assertThat(Fixtures.json(tmp.resolve("c1/explanation.json")).get("explained_label").asText()).isEqualTo("label3");
        Result evaluated = run("evaluate-text", "--models", classifier.toString(), "--methods", "attribution", "--limit", "1", "--out", tmp.resolve("c2").toString());
        assertThat(evaluated.code()).as(evaluated.err()).isZero();
        assertThat(Fixtures.json(tmp.resolve("c2/results.json")).get("models").get("classifier").has("attribution")).isTrue();
    }

    /** A copy of a language-model fixture whose vocabulary is the bundled tokenizer's, with that tokenizer.json. */
    private static Path withBundledTokenizer(Path fixture, Path out) throws IOException {
        Path tokenizer = Fixtures.repository().resolve("models/mamba-fortunes/tokenizer.json");
        int vocab = Fixtures.json(Fixtures.repository().resolve("models/mamba-fortunes/config.json")).get("vocab_size").asInt();
        float[] table = org.mambalens.engine.model.ExtendedVocabulary.table(fixture);
        int D = table.length / Fixtures.json(fixture.resolve("config.json")).get("vocab_size").asInt();
        java.util.Random random = new java.util.Random(1);
        float[] rows = new float[(vocab - table.length / D) * D];
        for (int i = 0; i < rows.length; i++) rows[i] = (float) (0.1 * random.nextGaussian());
        org.mambalens.engine.model.ExtendedVocabulary.write(fixture, out, rows);
        Files.copy(tokenizer, out.resolve("tokenizer.json"));
        return out;
    }
}
