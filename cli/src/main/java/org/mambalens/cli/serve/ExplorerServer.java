package org.mambalens.cli.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.mambalens.cli.Main;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * The explorer's web server (the JDK's {@code com.sun.net.httpserver}): the page and its assets from the classpath,
 * and the JSON API under {@code /api}. Requests run on a fixed pool of workers (their kernels on the engine's threads
 * when no other request holds them); those that arrive while all are busy wait in an unbounded queue, in order,
 * rather than being refused. Bodies over the limit are refused (413) before
 * they are read whole. Bound to a loopback address, it answers only requests whose Host is a loopback name, so a web
 * page elsewhere cannot reach it through a DNS name that resolves to 127.0.0.1.
 */
public final class ExplorerServer implements AutoCloseable {
    /** The page's files, served by these names only (nothing from a request is ever resolved as a path). */
    private static final Map<String, String> ASSETS = Map.of(
            "/", "index.html", "/index.html", "index.html", "/explorer.js", "explorer.js", "/explorer.css", "explorer.css");
    private static final String ASSET_FOLDER = "/org/mambalens/cli/serve/web/";
    /** The page may load only what this server serves, and draw images it makes itself. */
    static final String CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServer server;
    private final ExecutorService workers;
    private final ModelCatalog catalog;
    private final ExplorerApi api;
    private final long maxBody;
    private final boolean loopbackOnly;

    /**
     * @param bundled  the bundled models' folder ({@code models/})
     * @param user     {@code --models}: a folder of further checkpoints, or null
     * @param examples the bundled example images' folder
     * @param threads  requests computed at once
     * @param maxBody  the largest request body accepted, bytes
     */
    public ExplorerServer(InetSocketAddress address, Path bundled, Path user, Path examples, int threads, long maxBody) throws IOException {
        if (threads < 1) throw new IllegalArgumentException("--threads must be at least 1, not " + threads);
        this.catalog = new ModelCatalog(bundled, user);
        this.api = new ExplorerApi(catalog, examples);
        this.maxBody = maxBody;
        this.loopbackOnly = address.getAddress() != null && address.getAddress().isLoopbackAddress();
        AtomicInteger count = new AtomicInteger();
        this.workers = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                r -> Thread.ofPlatform().name("serve-" + count.incrementAndGet()).daemon().unstarted(r));
        this.server = HttpServer.create(address, 64);
        server.setExecutor(workers);
        server.createContext("/", this::handle);
    }

    public void start() {
        server.start();
    }

    /** The port bound (the one asked for, or the one the system chose for port 0). */
    public int port() {
        return server.getAddress().getPort();
    }

    /** Stops accepting, lets the requests under way finish (up to a few seconds), then closes the loaded models. */
    @Override
    public void close() {
        server.stop(2);
        workers.shutdown();
        try {
            if (!workers.awaitTermination(30, TimeUnit.SECONDS)) workers.shutdownNow();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        catalog.close();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String path = exchange.getRequestURI().getPath(), method = exchange.getRequestMethod();
            try {
                checkHost(exchange);
                if (path.startsWith("/api/")) route(exchange, path, method);
                else serveAsset(exchange, path, method);
            } catch (ApiException e) {
                sendError(exchange, e.status(), e.getMessage());
            } catch (IllegalArgumentException e) {
                sendError(exchange, ApiException.BAD_REQUEST, Main.oneLine(e));       // the engine's and the explain command's refusals of an input
            } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
                System.err.println("serve: " + method + " " + path + ": " + Main.oneLine(e));
                if (Boolean.getBoolean("mambalens.debug")) e.printStackTrace();
                sendError(exchange, 500, Main.oneLine(e));
            }
        }
    }

    private void route(HttpExchange exchange, String path, String method) throws IOException {
        switch (path) {
            case "/api/models" -> get(exchange, method, api::models);
            case "/api/examples" -> get(exchange, method, api::examples);
            case "/api/predict" -> post(exchange, method, ExplorerApi.PREDICT_FIELDS, api::predict);
            case "/api/explain" -> post(exchange, method, ExplorerApi.EXPLAIN_FIELDS, api::explain);
            case "/api/attention" -> post(exchange, method, ExplorerApi.ATTENTION_FIELDS, api::attention);
            default -> {
                if (path.startsWith("/api/examples/")) {
                    expectMethod(method, "GET");
                    send(exchange, 200, contentType(path), api.exampleImage(path.substring("/api/examples/".length())));
                } else {
                    throw new ApiException(ApiException.NOT_FOUND, "no API endpoint " + path + " (GET /api/models, /api/examples; POST /api/predict, /api/explain, /api/attention)");
                }
            }
        }
    }

    private void get(HttpExchange exchange, String method, java.util.function.Supplier<JsonNode> answer) throws IOException {
        expectMethod(method, "GET");
        sendJson(exchange, 200, answer.get());
    }

    private void post(HttpExchange exchange, String method, Set<String> fields, Function<JsonRequest, JsonNode> answer) throws IOException {
        expectMethod(method, "POST");
        sendJson(exchange, 200, answer.apply(JsonRequest.parse(readBody(exchange), fields)));
    }

    private static void expectMethod(String method, String expected) {
        if (!method.equals(expected)) throw new ApiException(ApiException.METHOD_NOT_ALLOWED, method + " is not allowed here; use " + expected);
    }

    /** The body, refused with 413 as soon as it is known to be larger than the limit (by its Content-Length, or while reading). */
    private byte[] readBody(HttpExchange exchange) throws IOException {
        String declared = exchange.getRequestHeaders().getFirst("Content-Length");
        String tooLarge = "the request body is over " + maxBody + " bytes";
        if (declared != null) {
            try {
                if (Long.parseLong(declared.strip()) > maxBody) throw new ApiException(ApiException.TOO_LARGE, tooLarge);
            } catch (NumberFormatException e) {
                throw new ApiException(ApiException.BAD_REQUEST, "Content-Length \"" + declared + "\" is not a number");
            }
        }
        try (InputStream in = exchange.getRequestBody()) {
            byte[] body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBody + 1));
            if (body.length > maxBody) throw new ApiException(ApiException.TOO_LARGE, tooLarge);
            return body;
        }
    }

    private void checkHost(HttpExchange exchange) {
        if (!loopbackOnly) return;
        String host = exchange.getRequestHeaders().getFirst("Host");
        String name = host == null ? "" : host.replaceFirst(":\\d+$", "").replaceAll("^\\[|]$", "");
        boolean loopback = name.equals("localhost") || name.equals("127.0.0.1") || name.equals("::1");
        if (!loopback) {
            try {
                loopback = !name.isEmpty() && name.chars().allMatch(c -> Character.isDigit(c) || c == '.') && InetAddress.getByName(name).isLoopbackAddress();
            } catch (IOException e) {
                loopback = false;
            }
        }
        if (!loopback) throw new ApiException(ApiException.FORBIDDEN, "Host \"" + host + "\" is not this machine; the server listens on the loopback address only");
    }

    private void serveAsset(HttpExchange exchange, String path, String method) throws IOException {
        String name = ASSETS.get(path);
        if (name == null) throw new ApiException(ApiException.NOT_FOUND, "no page " + path);
        expectMethod(method, "GET");
        try (InputStream in = ExplorerServer.class.getResourceAsStream(ASSET_FOLDER + name)) {
            if (in == null) throw new IllegalStateException("the jar lacks the explorer's " + name);
            exchange.getResponseHeaders().set("Content-Security-Policy", CONTENT_SECURITY_POLICY);
            send(exchange, 200, contentType(name), in.readAllBytes());
        }
    }

    private static String contentType(String name) {
        if (name.endsWith(".html")) return "text/html; charset=utf-8";
        if (name.endsWith(".js")) return "text/javascript; charset=utf-8";
        if (name.endsWith(".css")) return "text/css; charset=utf-8";
        if (name.endsWith(".png")) return "image/png";
        return "application/octet-stream";
    }

    private static void sendJson(HttpExchange exchange, int status, JsonNode doc) throws IOException {
        send(exchange, status, "application/json; charset=utf-8", JSON.writeValueAsBytes(doc));
    }

    /** An error as JSON: {"error": one line, "status": code}. */
    private static void sendError(HttpExchange exchange, int status, String message) throws IOException {
        try {
            sendJson(exchange, status, JSON.createObjectNode().put("error", message).put("status", status));
        } catch (IOException | UncheckedIOException | IllegalStateException e) {
            // The response had begun (headers sent) or the client left: nothing more can be said to it.
        }
    }

    private static void send(HttpExchange exchange, int status, String type, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.getResponseHeaders().set("Cache-Control", "no-store");
        exchange.getResponseHeaders().set("X-Content-Type-Options", "nosniff");
        exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }
}
