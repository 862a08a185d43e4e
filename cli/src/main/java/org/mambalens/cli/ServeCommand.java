package org.mambalens.cli;

import org.mambalens.cli.serve.ExplorerServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"A local web explorer: pick a model (or two side by side), type a text or drop an image, and see the prediction, "
                + "token or pixel relevance (raw attention, rollout, attribution) for any target and position, and each layer's attention "
                + "matrix; with a JSON API under /api (GET /api/models, POST /api/predict, /api/explain, /api/attention).",
                "Models: the bundled ones under models/ and every checkpoint directory under --models, each loaded on first use. Ctrl-C stops it."})
final class ServeCommand implements Callable<Integer> {
    @Option(names = "--port", paramLabel = "N", defaultValue = "8080", description = "TCP port (default ${DEFAULT-VALUE}; 0: any free one).")
    int port;

    @Option(names = "--host", paramLabel = "ADDRESS", defaultValue = "127.0.0.1",
            description = "Address to listen on (default ${DEFAULT-VALUE}, this machine only; 0.0.0.0 opens it to the network, with no authentication).")
    String host;

    @Option(names = "--models", paramLabel = "DIR", description = "A folder of further checkpoint directories (searched 4 levels deep; links out of it are not followed).")
    Path models;

    @Option(names = "--threads", paramLabel = "N", description = "Requests computed at once; more wait in line (default: half the cores, 2 to 8).")
    Integer threads;

    @Option(names = "--max-body", paramLabel = "BYTES", defaultValue = "8388608", description = "Largest request body accepted, e.g. an uploaded image in base64 (default ${DEFAULT-VALUE}).")
    long maxBody;

    @Override
    public Integer call() throws Exception {
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        int workers = threads != null ? threads : Math.clamp(Runtime.getRuntime().availableProcessors() / 2, 2, 8);
        ExplorerServer server = new ExplorerServer(new InetSocketAddress(host, port), home.resolve("models"), models,
                home.resolve("data/fashion-mnist"), workers, maxBody);
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = Thread.ofPlatform().unstarted(() -> {
            System.err.println("serve: stopping");
            server.close();
            stopped.countDown();
        });
        Runtime.getRuntime().addShutdownHook(hook);
        server.start();
        String shown = host.contains(":") ? "[" + host + "]" : host;
        System.out.println("MambaLens explorer on http://" + shown + ":" + server.port() + "/ (Ctrl-C stops it)");
        stopped.await();
        return 0;
    }
}
