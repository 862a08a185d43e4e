package org.mambalens.cli;

import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.text.StreamingDecoder;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Continue a prompt with a language model, streaming the text as it is generated.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Mixin
    ModelOption model;

    static final class Input {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "Prompt text, encoded with the model's tokenizer.json.")
        String prompt;

        @Option(names = "--token-ids", paramLabel = "IDS", description = "Prompt as comma-separated token ids.")
        String tokenIds;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "50", description = "Tokens to generate (default ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--greedy", description = "Always take the most likely token (the default when no --temperature is given).")
    boolean greedy;

    @Option(names = "--temperature", paramLabel = "T", description = "Sample with this temperature (> 0).")
    Float temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "Sample among the K most likely tokens; 0: all (default).")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1.0", description = "Nucleus sampling: the smallest set of tokens of probability >= P (default ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Random seed for sampling (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--print-ids", description = "Print the prompt and generated ids, comma-separated, on one line instead of the text.")
    boolean printIds;

    @Option(names = "--ignore-eos", description = "Keep generating after the end-of-sequence token.")
    boolean ignoreEos;

    @Option(names = "--min-new-tokens", paramLabel = "N", defaultValue = "0",
            description = "Never pick the end-of-sequence token before N new tokens (transformers' min_new_tokens).")
    int minNewTokens;

    @Override
    public Integer call() {
        if (minNewTokens < 0) throw new IllegalArgumentException("--min-new-tokens must be >= 0, got " + minNewTokens);
        if (maxNewTokens < 0) throw new IllegalArgumentException("--max-new-tokens must be >= 0, got " + maxNewTokens);
        if (greedy && temperature != null) throw new IllegalArgumentException("--greedy and --temperature exclude each other");
        Sampler sampler = temperature == null ? Sampler.greedy() : Sampler.sampling(temperature, topK, topP, seed);
        Path dir = model.resolve();
        if (Models.isTextClassifier(dir)) throw new IllegalArgumentException("--model " + dir + " is a text classifier, not a causal LM: use classify --text");
        try (LanguageModel lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
            BpeTokenizer tokenizer = input.prompt != null || !printIds ? tokenizer(dir) : null;
            int[] prompt = input.prompt != null ? tokenizer.encode(input.prompt) : TokenIds.parse(input.tokenIds);
            if (prompt.length == 0) throw new IllegalArgumentException("--prompt encodes to no tokens");
            PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
            StreamingDecoder text = tokenizer == null ? null : new StreamingDecoder(tokenizer);
            if (!printIds) out.print(tokenizer.decode(prompt));

            int[] ids = Arrays.copyOf(prompt, prompt.length + maxNewTokens);
            int n = prompt.length;
            LanguageModel.State state = lm.newState();
            float[] logits = lm.prefill(prompt, state);
            long start = System.nanoTime();
            while (n < ids.length) {
                if (n - prompt.length < minNewTokens) logits[lm.eosTokenId()] = Float.NEGATIVE_INFINITY;
                int next = sampler.next(logits);
                ids[n++] = next;
                if (!printIds) out.print(text.accept(next));
                if (next == lm.eosTokenId() && !ignoreEos) break;
                if (n < ids.length) logits = lm.step(next, state);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (printIds) out.println(TokenIds.format(Arrays.copyOf(ids, n)));
            else out.println(text.flush());
            System.err.printf("[%d prompt tokens, %d generated, %.1f tokens/s]%n", prompt.length, n - prompt.length,
                    (n - prompt.length) / Math.max(seconds, 1e-9));
        }
        return 0;
    }

    private static BpeTokenizer tokenizer(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": no tokenizer.json; give --token-ids and --print-ids instead");
        return BpeTokenizer.load(file);
    }
}
