package org.mambalens.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.DirectoryTree;
import org.mambalens.engine.io.Npy;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The explorer in a real browser: Debian's Chromium, headless, driven through the DevTools protocol (over the JDK's
 * own WebSocket client, so no driver is needed). The page loads, explains the bundled text and image, follows a click
 * on a token, asks nothing of any other site, and leaves screenshots in {@code target/explorer-browser/}.
 * Skipped where Chromium is not installed ({@code .ci/run} installs it).
 */
class ExplorerBrowserTest {
    static final Path SCREENSHOTS = Path.of("target", "explorer-browser");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static Path chromium() {
        String named = System.getenv("CHROMIUM");
        return Stream.of(named, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
                .filter(p -> p != null && Files.isExecutable(Path.of(p))).map(Path::of).findFirst().orElse(null);
    }

    @Test
    void thePageExplainsTheBundledTextAndImageAndFollowsAClickOnAToken() throws Exception {
        Path browser = chromium();
        Assumptions.assumeTrue(browser != null, "Chromium is not installed (apt-get install chromium; .ci/run installs it)");
        Path repository = Fixtures.repository();
        Files.createDirectories(SCREENSHOTS);
        try (ExplorerServer server = new ExplorerServer(new InetSocketAddress("127.0.0.1", 0), repository.resolve("models"), null,
                repository.resolve("data/fashion-mnist"), 2, 8 << 20);
             Chromium chrome = new Chromium(browser)) {
            server.start();
            String origin = "http://127.0.0.1:" + server.port();

            chrome.open(origin + "/?a=mamba-fortunes&b=gptneox-fortunes&method=rollout");
            chrome.waitFor("document.body.dataset.state === 'ready' && document.querySelectorAll('.column .token').length === 20");
            assertThat(chrome.eval("document.querySelector('.column .token.explained').dataset.position").asText()).isEqualTo("9");
            assertThat(chrome.eval("document.querySelectorAll('.thumbs canvas').length").asInt()).isEqualTo(8);
            assertThat(chrome.eval("document.querySelectorAll('.predictions li').length").asInt()).isEqualTo(20);
            assertThat(chrome.eval("document.querySelectorAll('.error:not([hidden])').length").asInt()).isZero();

            chrome.eval("document.querySelectorAll('.column')[0].querySelectorAll('.token')[3].click()");
            chrome.waitFor("document.body.dataset.state === 'ready' && document.querySelector('.column .token.explained').dataset.position === '3'");
            assertThat(chrome.eval("location.search").asText()).contains("pos=3");
            assertThat(chrome.eval("document.querySelector('.predictions .at').textContent").asText()).isEqualTo("after token 3");
            assertThat(chrome.eval("[...document.querySelectorAll('.column')].map(c => c.querySelector('.token.explained').dataset.position).join()").asText())
                    .as("both columns explain the clicked position").isEqualTo("3,3");
            chrome.eval("document.querySelectorAll('.column')[0].querySelectorAll('.thumbs figure')[2].click()");
            chrome.waitFor("[...document.querySelectorAll('.layer-name')].map(n => n.textContent).join() === 'layer 2,layer 2'");
            // The first column's list: the mean, then the channels ranked as compare-attention ranks them; pick the top one.
            chrome.eval("(() => { const s = document.querySelector('.column .unit'); s.value = s.options[1].value; s.dispatchEvent(new Event('change')); })()");
            chrome.waitFor("location.search.includes('ua=') && document.querySelector('.column .unit').selectedIndex === 1 && "
                    + "document.querySelector('.column .unit').options.length === 17");
            chrome.eval("document.querySelectorAll('.column')[0].querySelectorAll('.predictions li')[1].click()");
            chrome.waitFor("document.body.dataset.state === 'ready' && location.search.includes('target=%23') && "
                    + "document.querySelector('.column .predictions li:nth-child(2)').classList.contains('target')");
            // Values on hover: the pointer over the enlarged matrix's last row, first column.
            JsonNode box = chrome.eval("(() => { const r = document.querySelector('canvas.zoom').getBoundingClientRect(); return [r.right - 4, r.bottom - 4]; })()");
            chrome.call("Input.dispatchMouseEvent", JSON.createObjectNode().put("type", "mouseMoved").put("x", box.get(0).asDouble()).put("y", box.get(1).asDouble()));
            chrome.waitFor("!document.querySelector('#tooltip').hidden && document.querySelector('#tooltip').textContent.includes('query 9')");
            assertThat(chrome.eval("document.querySelector('#tooltip').textContent").asText()).contains("layer 2", "key   9", "value ");
            chrome.screenshot(SCREENSHOTS.resolve("text.png"));

            // The NPY download is what numpy (and the engine's reader) loads.
            String npy = chrome.eval("(async () => { const b = new Uint8Array(await npy([1, 2, 3, 4, 5, 6], [2, 3]).arrayBuffer()); "
                    + "return btoa(String.fromCharCode(...b)); })()").asText();
            Path file = tmp.resolve("download.npy");
            Files.write(file, Base64.getDecoder().decode(npy));
            assertThat(Npy.readFloat32(file).shape()).containsExactly(2, 3);
            assertThat(Npy.readFloat32(file).data()).containsExactly(1, 2, 3, 4, 5, 6);

            chrome.open(origin + "/?a=vim-fashion&b=vit-fashion&method=attribution&example=test-0000-ankle-boot.png");
            chrome.waitFor("document.body.dataset.state === 'ready' && document.querySelectorAll('canvas.overlay:not([hidden])').length === 2");
            assertThat(chrome.eval("[...document.querySelectorAll('.predictions li.target')].map(l => l.textContent.trim().split('  ')[0]).join()").asText())
                    .isEqualTo("Ankle boot,Ankle boot");
            // The maps are drawn: an overlay's pixels are not all alike.
            String spread = "(() => { const c = document.querySelector('canvas.overlay'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                    + " let lo = 255, hi = 0; for (let k = 0; k < d.length; k += 4) { lo = Math.min(lo, d[k]); hi = Math.max(hi, d[k]); } return hi - lo; })()";
            assertThat(chrome.eval(spread).asInt()).isGreaterThan(50);
            chrome.screenshot(SCREENSHOTS.resolve("image.png"));

            // An image of the user's, given to the file input as a drop would give it: explained, and kept out of the URL.
            JsonNode root = chrome.call("DOM.getDocument", JSON.createObjectNode());
            int input = chrome.call("DOM.querySelector", JSON.createObjectNode().put("nodeId", root.get("root").get("nodeId").asInt()).put("selector", "#file")).get("nodeId").asInt();
            ObjectNode files = JSON.createObjectNode().put("nodeId", input);
            files.putArray("files").add(repository.resolve("data/fashion-mnist/test-0001-pullover.png").toAbsolutePath().toString());
            chrome.call("DOM.setFileInputFiles", files);
            chrome.waitFor("document.body.dataset.state === 'ready' && !location.search.includes('example=') && "
                    + "document.querySelector('.predictions li.target').textContent.includes('Pullover')");

            assertThat(chrome.exceptions).as("errors thrown in the page").isEmpty();
            assertThat(chrome.requested).isNotEmpty().allSatisfy(url -> assertThat(url).matches("(" + java.util.regex.Pattern.quote(origin) + "/|data:|blob:).*"));
        }
        assertThat(SCREENSHOTS.resolve("text.png")).isNotEmptyFile();
    }

    /** A headless Chromium and one page of it, spoken to in the DevTools protocol's JSON messages. */
    static final class Chromium implements AutoCloseable {
        final Process process;
        final WebSocket socket;
        final AtomicInteger ids = new AtomicInteger();
        final Map<Integer, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
        final List<String> exceptions = new CopyOnWriteArrayList<>(), requested = new CopyOnWriteArrayList<>();

        /** Not under the test's {@code @TempDir}: JUnit fails a test whose directory it cannot remove, and a browser's
         * profile can still be written to while it shuts down. This one is removed by {@link #close()}, retrying. */
        final Path profile;

        Chromium(Path binary) throws Exception {
            profile = Files.createTempDirectory("mambalens-chromium");
            process = new ProcessBuilder(binary.toString(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-extensions",
                    "--no-first-run", "--disable-crash-reporter", "--disable-breakpad", "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir=" + profile,
                    "--window-size=1400,1500", "about:blank")
                    .redirectErrorStream(true).redirectOutput(profile.resolve("chromium.log").toFile()).start();
            Path portFile = profile.resolve("DevToolsActivePort");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!(Files.exists(portFile) && Files.readAllLines(portFile).size() >= 2)) {
                if (System.nanoTime() > deadline || !process.isAlive()) throw new IllegalStateException("Chromium did not start: " + Files.readString(profile.resolve("chromium.log")));
                Thread.sleep(100);
            }
            int port = Integer.parseInt(Files.readAllLines(portFile).getFirst().strip());
            HttpClient http = HttpClient.newHttpClient();
            JsonNode targets = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list")).build(),
                    HttpResponse.BodyHandlers.ofString()).body());
            String page = null;
            for (JsonNode t : targets) if (t.get("type").asText().equals("page")) page = t.get("webSocketDebuggerUrl").asText();
            socket = http.newWebSocketBuilder().buildAsync(URI.create(page), new Listener()).get(30, TimeUnit.SECONDS);
            call("Runtime.enable", JSON.createObjectNode());
            call("Network.enable", JSON.createObjectNode());
            call("Page.enable", JSON.createObjectNode());
        }

        /** Collects each message's fragments; answers complete their call, events are recorded. */
        private final class Listener implements WebSocket.Listener {
            private final StringBuilder message = new StringBuilder();

            @Override
            public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
                message.append(data);
                if (last) {
                    try {
                        JsonNode m = JSON.readTree(message.toString());
                        if (m.has("id")) {
                            CompletableFuture<JsonNode> f = pending.remove(m.get("id").asInt());
                            if (f != null) f.complete(m);
                        } else if (m.path("method").asText().equals("Runtime.exceptionThrown")) {
                            exceptions.add(m.path("params").path("exceptionDetails").toString());
                        } else if (m.path("method").asText().equals("Network.requestWillBeSent")) {
                            requested.add(m.path("params").path("request").path("url").asText());
                        }
                    } catch (Exception e) {
                        exceptions.add("unreadable DevTools message: " + e.getMessage());
                    }
                    message.setLength(0);
                }
                webSocket.request(1);
                return null;
            }
        }

        JsonNode call(String method, ObjectNode params) throws Exception {
            int id = ids.incrementAndGet();
            CompletableFuture<JsonNode> answer = new CompletableFuture<>();
            pending.put(id, answer);
            socket.sendText(JSON.createObjectNode().put("id", id).put("method", method).set("params", params).toString(), true).get(10, TimeUnit.SECONDS);
            JsonNode m = answer.get(60, TimeUnit.SECONDS);
            if (m.has("error")) throw new IllegalStateException(method + ": " + m.get("error"));
            return m.get("result");
        }

        void open(String url) throws Exception {
            call("Page.navigate", JSON.createObjectNode().put("url", url));
        }

        /** The value of a JavaScript expression in the page. */
        JsonNode eval(String expression) throws Exception {
            JsonNode result = call("Runtime.evaluate", JSON.createObjectNode().put("expression", expression).put("returnByValue", true).put("awaitPromise", true));
            if (result.has("exceptionDetails")) throw new IllegalStateException(expression + ": " + result.get("exceptionDetails"));
            return result.path("result").path("value");
        }

        /** Waits (up to a minute: the first requests load the models) until {@code condition} holds in the page. */
        void waitFor(String condition) throws Exception {
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            // Right after a navigation the old document may be gone and the new one not there yet: false, not an error.
            while (!eval("(() => { try { return !!(" + condition + "); } catch (e) { return false; } })()").asBoolean()) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the page never got to " + condition + "; it shows: " + eval("document.body.innerText.slice(0, 600)").asText());
                }
                Thread.sleep(100);
            }
        }

        void screenshot(Path file) throws Exception {
            JsonNode shot = call("Page.captureScreenshot", JSON.createObjectNode().put("format", "png").put("captureBeyondViewport", true));
            Files.write(file, Base64.getDecoder().decode(shot.get("data").asText()));
        }

        @Override
        public void close() throws Exception {
            try {
                socket.sendClose(WebSocket.NORMAL_CLOSURE, "").get(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                // The browser is stopped below either way.
            }
            // The whole tree: a helper (crashpad, a renderer) outliving the browser keeps writing into the profile,
            // and the temporary directory then cannot be removed.
            List<ProcessHandle> tree = new ArrayList<>(process.descendants().toList());
            tree.add(process.toHandle());
            tree.forEach(ProcessHandle::destroy);
            for (ProcessHandle p : tree) {
                try {
                    p.onExit().get(10, TimeUnit.SECONDS);
                } catch (java.util.concurrent.TimeoutException e) {
                    p.destroyForcibly();
                    p.onExit().get(10, TimeUnit.SECONDS);
                }
            }
            for (int attempt = 1; ; attempt++) {
                try {
                    DirectoryTree.delete(profile);
                    return;
                } catch (java.io.IOException e) {
                    if (attempt == 5) throw e;
                    Thread.sleep(200);
                }
            }
        }
    }
}
