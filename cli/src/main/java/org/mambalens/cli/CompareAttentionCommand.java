package org.mambalens.cli;

import org.mambalens.engine.io.OutputDirectory;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.xai.data.LabelledTexts;
import org.mambalens.xai.render.AttentionFigure;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "compare-attention", mixinStandardHelpOptions = true,
        description = {"The seed paper's Fig. 4 for text: each language model's attention matrices on the same text, side by side "
                + "(per layer the mean |A| over channels or heads, and the chosen channels or heads), in DIR/report.html with PNGs, "
                + "NPY and figure.json beside it.",
                "Without --model: the bundled Mamba LM and GPT-NeoX LM (models/mamba-fortunes, models/gptneox-fortunes), trained on the same "
                        + "text with the same tokenizer."})
final class CompareAttentionCommand implements Callable<Integer> {
    static final String[] BUNDLED_MODELS = {"models/mamba-fortunes", "models/gptneox-fortunes"};

    @Option(names = "--model", paramLabel = "DIR", description = "A language model or text classifier (repeatable). Default: the bundled Mamba and GPT-NeoX LMs.")
    List<Path> models;

    @Option(names = "--text", paramLabel = "TEXT", description = "The text. Default: the first fortune of " + LabelledTexts.FORTUNES_TEST
            + " that is at least --tokens tokens long.")
    String text;

    @Option(names = "--tokens", paramLabel = "N", defaultValue = "64", description = "How many tokens from the start of the text (default 64, as the seed's figure).")
    int tokens;

    @Option(names = "--chosen", paramLabel = "K", defaultValue = "4", description = "Channels or heads shown per layer beside the layer mean (default 4).")
    int chosen;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Override
    public Integer call() {
        Path home = Path.of(System.getProperty("mambalens.home", "."));
        List<Path> dirs = new ArrayList<>();
        if (models == null || models.isEmpty()) for (String m : BUNDLED_MODELS) dirs.add(home.resolve(m));
        else dirs.addAll(models);
        for (Path dir : dirs) {
            ModelFamily family = Families.forDirectory(dir);
            if (family.kind() != ModelFamily.Kind.LANGUAGE) {
                throw new IllegalArgumentException("--model " + dir + " is model_type \"" + family.modelType() + "\", not a language model");
            }
        }
        String chosenText = text != null ? text : defaultText(home, BpeTokenizer.load(dirs.get(0).resolve("tokenizer.json")));
        List<AttentionFigure.Subject> subjects = new ArrayList<>();
        Set<String> names = new HashSet<>();
        try {
            for (Path dir : dirs) {
                BpeTokenizer tokenizer = BpeTokenizer.load(dir.resolve("tokenizer.json"));
                int[] ids = tokenizer.encode(chosenText);
                if (ids.length < 2) throw new IllegalArgumentException("--text encodes to " + ids.length + " token(s) for " + dir + "; at least 2 are needed");
                String name = dir.toAbsolutePath().normalize().getFileName().toString().replaceAll("[^A-Za-z0-9._-]", "_");
                while (!names.add(name)) name = name + "_";
                LanguageModel lm = Models.loadLanguageModel(dir);
                subjects.add(new AttentionFigure.Subject(name, lm, ids, id -> tokenizer.decode(new int[]{id})));
            }
            System.out.println("wrote " + OutputDirectory.write(out, staging -> AttentionFigure.write(staging, chosenText, subjects, tokens, chosen)));
        } finally {
            subjects.forEach(s -> s.model().close());
        }
        return 0;
    }

    /** The first bundled test fortune that is at least --tokens long (else the longest), so the figure is full size. */
    private String defaultText(Path home, BpeTokenizer tokenizer) {
        LabelledTexts texts = LabelledTexts.read(home.resolve(LabelledTexts.FORTUNES_TEST), Integer.MAX_VALUE);
        String longest = texts.get(0).text();
        int longestTokens = 0;
        for (LabelledTexts.Text t : texts.texts()) {
            int n = tokenizer.encode(t.text()).length;
            if (n >= tokens) return t.text();
            if (n > longestTokens) {
                longest = t.text();
                longestTokens = n;
            }
        }
        return longest;
    }
}
