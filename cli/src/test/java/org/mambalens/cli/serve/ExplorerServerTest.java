package org.mambalens.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.cli.Main;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The explorer's server on an ephemeral port, driven over HTTP as the page and scripts drive it: every endpoint,
 * its answers checked against the commands that compute the same thing, and its refusals.
 */
class ExplorerServerTest {
    static final String TEXT = "The best way to predict the future is", IMAGE = "test-0000-ankle-boot.png";
    static final long MAX_BODY = 64 * 1024;
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;
    static ExplorerServer server;
    static HttpClient http;
    static Path repository;

    @BeforeAll
    static void start() throws IOException {
        repository = Fixtures.repository();
        Path user = tmp.resolve("checkpoints");
        // A real checkpoint under --models, and two that reach outside it through links: neither may be offered.
        copy(repository.resolve("models/vit-fashion"), user.resolve("local/vit-copy"));
        Files.createSymbolicLink(user.resolve("linked-dir"), repository.resolve("models/vim-fashion"));
        Path linkedWeights = Files.createDirectories(user.resolve("linked-weights"));
        Files.copy(repository.resolve("models/vim-fashion/config.json"), linkedWeights.resolve("config.json"));
        Files.createSymbolicLink(linkedWeights.resolve("model.safetensors"), repository.resolve("models/vim-fashion/model.safetensors"));
        server = new ExplorerServer(new InetSocketAddress("127.0.0.1", 0), repository.resolve("models"), user, repository.resolve("data/fashion-mnist"), 4, MAX_BODY);
        server.start();
        http = HttpClient.newHttpClient();
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static void copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
    }

    record Answer(int status, JsonNode json, String contentType) {
    }

    static Answer get(String path) throws Exception {
        return answer(http.send(HttpRequest.newBuilder(uri(path)).build(), HttpResponse.BodyHandlers.ofByteArray()));
    }

    static Answer post(String path, String body) throws Exception {
        return answer(http.send(HttpRequest.newBuilder(uri(path)).POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofByteArray()));
    }

    static Answer post(String path, JsonNode body) throws Exception {
        return post(path, JSON.writeValueAsString(body));
    }

    static URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    private static Answer answer(HttpResponse<byte[]> r) throws IOException {
        String type = r.headers().firstValue("Content-Type").orElse("");
        return new Answer(r.statusCode(), type.startsWith("application/json") ? JSON.readTree(r.body()) : null, type);
    }

    static ObjectNode request(String model) {
        return JSON.createObjectNode().put("model", model);
    }

    static ObjectNode textRequest(String model) {
        return request(model).put("text", TEXT);
    }

    static ObjectNode imageRequest(String model) {
        return request(model).put("example", IMAGE);
    }

    /** An error: the status, one line naming what is wrong, as JSON. */
    static void expectError(Answer a, int status, String mentions) {
        assertThat(a.status()).as(String.valueOf(a.json())).isEqualTo(status);
        assertThat(a.json().get("status").asInt()).isEqualTo(status);
        assertThat(a.json().get("error").asText()).contains(mentions).doesNotContain("\n").doesNotContain("Exception");
    }

    /** Runs a command as the explorer's answers are checked against it. */
    static void cli(String... args) {
        assertThat(Main.run(args)).as(String.join(" ", args)).isZero();
    }

    /**
     * The same document up to the last bits of its numbers: the engine's vector kernels round differently before
     * and after the JIT compiles them, and its sums are split over however many threads are free.
     */
    static void assertSameDocument(JsonNode actual, JsonNode expected, String path) {
        if (expected.isNumber() && actual.isNumber()) {
            assertThat(actual.asDouble()).as(path).isCloseTo(expected.asDouble(), org.assertj.core.data.Offset.offset(1e-4 * Math.max(1, Math.abs(expected.asDouble()))));
            return;
        }
        assertThat(actual.getNodeType()).as(path).isEqualTo(expected.getNodeType());
        if (expected.isContainerNode()) {
            assertThat(actual.size()).as(path).isEqualTo(expected.size());
            if (expected.isArray()) for (int k = 0; k < expected.size(); k++) assertSameDocument(actual.get(k), expected.get(k), path + "[" + k + "]");
            else expected.fieldNames().forEachRemaining(f -> assertSameDocument(actual.get(f) == null ? com.fasterxml.jackson.databind.node.MissingNode.getInstance() : actual.get(f), expected.get(f), path + "." + f));
        } else {
            assertThat(actual).as(path).isEqualTo(expected);
        }
    }

    @Test
    void listsTheBundledModelsAndTheCheckpointsUnderModelsButNoneReachedThroughALink() throws Exception {
        Answer a = get("/api/models");
        assertThat(a.status()).isEqualTo(200);
        List<String> names = new ArrayList<>();
        a.json().get("models").forEach(m -> names.add(m.get("name").asText()));
        assertThat(names).contains("mamba-fortunes", "gptneox-fortunes", "mamba-fortunes-topics", "gptneox-fortunes-topics", "vim-fashion", "vit-fashion", "local/vit-copy")
                .doesNotContain("linked-dir", "linked-weights");
        JsonNode topics = a.json().get("models").get(names.indexOf("mamba-fortunes-topics"));
        assertThat(topics.get("kind").asText()).isEqualTo("text-classifier");
        assertThat(topics.get("methods").toString()).isEqualTo("[\"raw\",\"rollout\",\"attribution\"]");
        assertThat(a.json().get("models").get(names.indexOf("local/vit-copy")).get("bundled").asBoolean()).isFalse();
        Answer copy = post("/api/predict", imageRequest("local/vit-copy"));
        assertThat(copy.status()).isEqualTo(200);
        assertThat(copy.json().get("predictions").get(0).get("name").asText()).isEqualTo("Ankle boot");
        expectError(post("/api/predict", imageRequest("linked-dir")), 404, "unknown model \"linked-dir\"");
        expectError(post("/api/predict", imageRequest("../../models/vim-fashion")), 404, "unknown model");
        expectError(post("/api/predict", imageRequest("/etc")), 404, "unknown model");
    }

    @Test
    void thePageLoadsOnlyAssetsThisServerServes() throws Exception {
        HttpResponse<String> page = http.send(HttpRequest.newBuilder(uri("/")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(page.statusCode()).isEqualTo(200);
        assertThat(page.headers().firstValue("Content-Security-Policy").orElseThrow()).contains("default-src 'self'");
        Matcher refs = Pattern.compile("(?:src|href)=\"([^\"]*)\"").matcher(page.body());
        List<String> assets = new ArrayList<>();
        while (refs.find()) assets.add(refs.group(1));
        assertThat(assets).containsExactlyInAnyOrder("data:,", "explorer.css", "explorer.js");
        for (String asset : List.of("explorer.css", "explorer.js")) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri("/" + asset)).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(asset).isEqualTo(200);
            assertThat(r.body()).as(asset + " names no other site").doesNotContain("http://", "https://", "//cdn");
        }
        expectError(get("/other.js"), 404, "no page /other.js");
        expectError(get("/../pom.xml"), 404, "no page");
        Answer examples = get("/api/examples");
        assertThat(examples.json().get("images").toString()).contains(IMAGE);
        HttpResponse<byte[]> png = http.send(HttpRequest.newBuilder(uri("/api/examples/" + IMAGE)).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertThat(png.body()).isEqualTo(Files.readAllBytes(repository.resolve("data/fashion-mnist").resolve(IMAGE)));
        expectError(get("/api/examples/..%2F..%2Fpom.xml"), 404, "no example image");
    }

    @Test
    void predictGivesTheNextTokensLabelsAndClassesWithProbabilities() throws Exception {
        Answer lm = post("/api/predict", textRequest("mamba-fortunes").put("top", 3));
        assertThat(lm.status()).isEqualTo(200);
        assertThat(lm.json().get("tokens")).hasSize(10);
        assertThat(lm.json().get("position").asInt()).isEqualTo(9);
        JsonNode top = lm.json().get("predictions");
        assertThat(top).hasSize(3);
        assertThat(top.get(0).get("probability").asDouble()).isGreaterThanOrEqualTo(top.get(1).get("probability").asDouble());
        // The next token the explain command predicts for the same text.
        Path out = tmp.resolve("predict-explain");
        cli("explain", "--model", repository.resolve("models/mamba-fortunes").toString(), "--text", TEXT, "--method", "raw", "--out", out.toString());
        assertThat(top.get(0).get("index").asInt()).isEqualTo(Fixtures.json(out.resolve("explanation.json")).get("predicted_next_token").asInt());
        Answer earlier = post("/api/predict", textRequest("mamba-fortunes").put("position", 2));
        assertThat(earlier.json().get("position").asInt()).isEqualTo(2);
        assertThat(earlier.json().get("predictions").get(0).get("index").asInt()).isNotEqualTo(top.get(0).get("index").asInt());
        Answer label = post("/api/predict", request("mamba-fortunes-topics").put("text", "The compiler crashed and the kernel panicked"));
        assertThat(label.json().get("predictions")).hasSize(5);
        double sum = 0;
        for (JsonNode p : label.json().get("predictions")) sum += p.get("probability").asDouble();
        assertThat(sum).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-6));
        Answer image = post("/api/predict", imageRequest("vim-fashion"));
        assertThat(image.json().get("predictions").get(0).get("name").asText()).isEqualTo("Ankle boot");
        assertThat(image.json().get("kind").asText()).isEqualTo("image");
    }

    /** The API's explanation is the explain command's explanation.json, field for field. */
    @Test
    void explainAnswersWhatTheExplainCommandWrites() throws Exception {
        Path out = tmp.resolve("explain-text");
        cli("explain", "--model", repository.resolve("models/gptneox-fortunes").toString(), "--text", TEXT, "--target", " to", "--out", out.toString());
        Answer text = post("/api/explain", textRequest("gptneox-fortunes").put("target", " to"));
        assertThat(text.status()).isEqualTo(200);
        assertSameDocument(text.json(), Fixtures.json(out.resolve("explanation.json")), "");

        Path images = tmp.resolve("explain-image");
        Path image = repository.resolve("data/fashion-mnist").resolve(IMAGE);
        cli("explain", "--model", repository.resolve("models/vim-fashion").toString(), "--model", repository.resolve("models/vit-fashion").toString(),
                "--image", image.toString(), "--target", "Sneaker", "--out", images.toString());
        JsonNode written = Fixtures.json(images.resolve("explanation.json"));
        Answer answered = post("/api/explain", JSON.createObjectNode().put("example", IMAGE).put("target", "Sneaker")
                .set("models", JSON.createArrayNode().add("vim-fashion").add("vit-fashion")));
        assertThat(answered.status()).as(String.valueOf(answered.json())).isEqualTo(200);
        assertThat(answered.json().get("image").asText()).isEqualTo(written.get("image").asText());
        for (int m = 0; m < 2; m++) {
            JsonNode w = written.get("models").get(m), a = answered.json().get("models").get(m);
            assertThat(w.get("explained_label").asText()).isEqualTo("Sneaker");
            for (String field : List.of("name", "predicted", "label", "explained", "explained_label", "start_layer", "cls_position")) {
                assertThat(a.get(field)).as(field).isEqualTo(w.get(field));
            }
            for (String method : List.of("raw", "rollout", "attribution")) {
                Npy.Array map = Npy.readFloat32(images.resolve(w.get(method).asText()));      // the command names its NPY file, the API inlines it
                assertThat(a.get(method)).hasSize(28);
                float[] inline = new float[28 * 28];
                for (int y = 0; y < 28; y++) for (int x = 0; x < 28; x++) inline[y * 28 + x] = (float) a.get(method).get(y).get(x).asDouble();
                assertThat(Fixtures.relativeError(inline, map.data())).as(method).isLessThan(1e-4);
            }
        }
    }

    @Test
    void explainTakesAnyPositionAndTarget() throws Exception {
        JsonNode e = post("/api/explain", textRequest("mamba-fortunes").put("position", 4).put("target", "#283").put("method", "rollout")).json();
        assertThat(e.get("position").asInt()).isEqualTo(4);
        assertThat(e.get("explained_token").asInt()).isEqualTo(283);
        assertThat(e.has("raw")).isFalse();
        JsonNode row = e.get("rollout");
        for (int t = 5; t < row.size(); t++) assertThat(row.get(t).asDouble()).as("after the position").isZero();
        JsonNode label = post("/api/explain", request("mamba-fortunes-topics").put("text", "The judge read the verdict").put("target", "law")).json();
        assertThat(label.get("explained_label").asText()).isEqualTo("law");
        expectError(post("/api/explain", textRequest("mamba-fortunes").put("target", " to predict")), 400, "tokens, not one; give #ID");
        expectError(post("/api/explain", textRequest("mamba-fortunes").put("position", 10)), 400, "position 10 is outside the text [0, 10)");
        expectError(post("/api/explain", request("mamba-fortunes-topics").put("text", "x").put("target", "sport")), 400, "label \"sport\" is not one of");
        expectError(post("/api/explain", imageRequest("vim-fashion").put("target", "Boot")), 400, "class \"Boot\" is not one of");
        expectError(post("/api/explain", JSON.createObjectNode().put("example", IMAGE).set("models", JSON.createArrayNode().add("vim-fashion").add("mamba-fortunes"))),
                400, "mamba-fortunes is a language model");
    }

    /** A layer's matrix is what the attention command writes; the channels are ranked as compare-attention ranks them. */
    @Test
    void attentionGivesEveryLayersMeanAndOneLayersRankedUnits() throws Exception {
        JsonNode all = post("/api/attention", textRequest("mamba-fortunes")).json();
        int layers = all.get("layers").asInt(), T = all.get("tokens").size();
        assertThat(all.get("means")).hasSize(layers);
        assertThat(all.get("means").get(0)).hasSize(T);
        assertThat(all.get("unit").asText()).isEqualTo("channel");

        int layer = 1;
        JsonNode one = post("/api/attention", textRequest("mamba-fortunes").put("layer", layer).put("ranked", 5)).json();
        JsonNode ranking = one.get("ranking");
        assertThat(ranking).hasSize(5);
        for (int k = 1; k < 5; k++) assertThat(ranking.get(k - 1).get("off_diagonal_share").asDouble()).isGreaterThanOrEqualTo(ranking.get(k).get("off_diagonal_share").asDouble());
        assertSameDocument(one.get("matrix"), all.get("means").get(layer), "the mean |A| either way");
        int first = ranking.get(0).get("index").asInt();
        JsonNode channel = post("/api/attention", textRequest("mamba-fortunes").put("layer", layer).put("index", first)).json();

        Path npy = tmp.resolve("attention.npy");
        StringBuilder ids = new StringBuilder();
        one.get("token_ids").forEach(id -> ids.append(ids.isEmpty() ? "" : ",").append(id.asInt()));
        cli("attention", "--model", repository.resolve("models/mamba-fortunes").toString(), "--token-ids", ids.toString(), "--layer", String.valueOf(layer), "--out", npy.toString());
        Npy.Array a = Npy.readFloat32(npy);
        int C = a.dim(0), size = T * T;
        double best = 0;
        for (int c = 0; c < C; c++) {
            double total = 0, off = 0;
            for (int k = 0; k < size; k++) {
                total += Math.abs(a.data()[c * size + k]);
                if (k / T != k % T) off += Math.abs(a.data()[c * size + k]);
            }
            best = Math.max(best, off / total);
        }
        assertThat(ranking.get(0).get("off_diagonal_share").asDouble()).isCloseTo(best, org.assertj.core.data.Offset.offset(1e-5));
        float[] served = new float[size];
        for (int k = 0; k < size; k++) served[k] = (float) channel.get("matrix").get(k / T).get(k % T).asDouble();
        assertThat(Fixtures.relativeError(served, java.util.Arrays.copyOfRange(a.data(), first * size, (first + 1) * size))).isLessThan(1e-5);
        JsonNode image = post("/api/attention", imageRequest("vit-fashion").put("layer", 0)).json();
        assertThat(image.get("unit").asText()).isEqualTo("head");
        assertThat(image.get("tokens").get(0).asText()).isEqualTo("cls");
        assertThat(image.get("tokens")).hasSize(50);
        expectError(post("/api/attention", textRequest("mamba-fortunes").put("layer", layers)), 400, "--layer " + layers + " is outside [0, " + layers + ")");
        expectError(post("/api/attention", textRequest("mamba-fortunes").put("layer", 0).put("index", 100000)), 400, "\"index\" 100000 is outside");
    }

    @Test
    void badRequestsAreRefusedWithTheirStatusAndOneLine() throws Exception {
        expectError(post("/api/explain", "{\"model\": \"mamba-fortunes\", \"text\": "), 400, "malformed JSON");
        expectError(post("/api/explain", "[1, 2]"), 400, "must be a JSON object");
        expectError(post("/api/predict", textRequest("mamba-fortunes").put("colour", "red")), 400, "unknown field \"colour\"");
        expectError(post("/api/predict", request("mamba-fortunes").put("text", 5)), 400, "\"text\" must be a string");
        expectError(post("/api/predict", request("mamba-fortunes")), 400, "\"text\" is needed");
        expectError(post("/api/predict", request("vim-fashion")), 400, "\"image\" (base64) or \"example\" is needed");
        expectError(post("/api/predict", textRequest("no-such-model")), 404, "unknown model \"no-such-model\"");
        expectError(post("/api/explain", textRequest("mamba-fortunes").put("method", "magic")), 400, "--method must be raw, rollout, attribution or all, not magic");
        expectError(post("/api/predict", request("vim-fashion").put("image", "bm90IGFuIGltYWdl")), 400, "image: not an image");
        expectError(post("/api/predict", request("vim-fashion").put("image", "%%%")), 400, "\"image\" is not base64");
        expectError(post("/api/predict", request("mamba-fortunes").put("text", "word ".repeat(2000))), 413, "at most 512");
        expectError(post("/api/predict", request("mamba-fortunes").put("text", "x".repeat((int) MAX_BODY))), 413, "over " + MAX_BODY + " bytes");
        expectError(post("/api/predict", request("vim-fashion").put("image", Base64.getEncoder().encodeToString(png(5000, 10)))), 413, "5000 × 10 px");
        expectError(get("/api/predict"), 405, "GET is not allowed here; use POST");
        expectError(post("/api/models", "{}"), 405, "POST is not allowed here; use GET");
        expectError(get("/api/nothing"), 404, "no API endpoint /api/nothing");
    }

    @Test
    void anUploadedImageOfAnySizeIsCroppedAndResizedLikeTheExample() throws Exception {
        BufferedImage boot = ImageIO.read(repository.resolve("data/fashion-mnist").resolve(IMAGE).toFile());
        BufferedImage big = new BufferedImage(84, 112, BufferedImage.TYPE_BYTE_GRAY);                        // three times as large, and taller
        big.getGraphics().drawImage(boot, 0, 14, 84, 84, null);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageIO.write(big, "png", bytes);
        JsonNode p = post("/api/predict", request("vim-fashion").put("image", "data:image/png;base64," + Base64.getEncoder().encodeToString(bytes.toByteArray()))).json();
        assertThat(p.get("predictions").get(0).get("name").asText()).isEqualTo("Ankle boot");
    }

    /** Requests queued on the workers all get the answer each gets alone (no request sees another's model state or input). */
    @Test
    void thirtyTwoConcurrentRequestsGiveTheAnswersOfOneAtATime() throws Exception {
        List<ObjectNode> requests = new ArrayList<>();
        for (int k = 0; k < 32; k++) {
            requests.add(switch (k % 4) {
                case 0 -> textRequest("mamba-fortunes").put("position", k % 10);
                case 1 -> textRequest("gptneox-fortunes-topics");
                case 2 -> imageRequest("vim-fashion").put("method", k % 8 == 2 ? "attribution" : "rollout");
                default -> imageRequest("vit-fashion");
            });
        }
        List<JsonNode> alone = new ArrayList<>();
        for (ObjectNode r : requests) alone.add(post("/api/explain", r).json());
        ExecutorService clients = Executors.newFixedThreadPool(32);
        try {
            List<Future<Answer>> together = new ArrayList<>();
            for (ObjectNode r : requests) together.add(clients.submit((Callable<Answer>) () -> post("/api/explain", r)));
            for (int k = 0; k < 32; k++) {
                Answer a = together.get(k).get();
                assertThat(a.status()).isEqualTo(200);
                assertSameDocument(a.json(), alone.get(k), "request " + k);
            }
        } finally {
            clients.shutdown();
        }
    }

    /** A page elsewhere that reaches the server through a name resolving to 127.0.0.1 gets nothing. */
    @Test
    void aHostOtherThanThisMachineIsRefused() throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.port())) {
            OutputStream out = socket.getOutputStream();
            out.write("GET /api/models HTTP/1.1\r\nHost: attacker.example:8080\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            String response = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            assertThat(response).startsWith("HTTP/1.1 403").contains("is not this machine");
        }
    }

    private static byte[] png(int width, int height) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageIO.write(new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY), "png", bytes);
        return bytes.toByteArray();
    }
}
