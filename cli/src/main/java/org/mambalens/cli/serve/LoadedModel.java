package org.mambalens.cli.serve;

import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.model.TextClassifier;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.backend.Precision;
import org.mambalens.engine.model.Device;
import org.mambalens.xai.render.ImageReport;
import org.mambalens.xai.render.TextReport;

import java.nio.file.Path;
import java.util.List;

/** A checkpoint loaded once for every request that names it (the engine's models may be called from any thread). */
sealed interface LoadedModel extends AutoCloseable {
    /** The most tokens a text may have: a layer's matrices are T × T per channel. */
    int MAX_TOKENS = 512;

    Path dir();

    ModelFamily family();

    @Override
    void close();

    /** What kind of checkpoint {@code dir} holds, as the API names it: "language", "text-classifier" or "image". */
    static String kind(ModelFamily family, Path dir) {
        if (family.kind() == ModelFamily.Kind.IMAGE) return "image";
        return Models.isTextClassifier(dir) ? "text-classifier" : "language";
    }

    static LoadedModel load(Path dir, ModelFamily family) {
        if (family.kind() == ModelFamily.Kind.IMAGE) {
            ImageClassifier classifier = Models.loadImageClassifier(dir);
            return new Image(dir, family, classifier, ImageReport.labels(dir, classifier.numClasses()));
        }
        BpeTokenizer tokenizer = BpeTokenizer.load(dir.resolve("tokenizer.json"));
        if (Models.isTextClassifier(dir)) {
            TextClassifier classifier = Models.loadTextClassifier(dir, Device.CPU, Precision.F32);
            return new Text(dir, family, classifier.model(), classifier, tokenizer);
        }
        return new Text(dir, family, Models.loadLanguageModel(dir), null, tokenizer);
    }

    /** A language model, or a text classifier ({@code classifier} not null) whose outputs are its labels. */
    record Text(Path dir, ModelFamily family, LanguageModel lm, TextClassifier classifier, BpeTokenizer tokenizer) implements LoadedModel {
        int[] encode(String text) {
            int[] ids = tokenizer.encode(text);
            if (ids.length == 0) throw new ApiException(ApiException.BAD_REQUEST, "--text encodes to no tokens");
            if (ids.length > MAX_TOKENS) {
                throw new ApiException(ApiException.TOO_LARGE, "the text is " + ids.length + " tokens; the explorer takes at most " + MAX_TOKENS);
            }
            return ids;
        }

        String token(int id) {
            return tokenizer.decode(new int[]{id});
        }

        /** An output's name: a label, or the next token's text. */
        String output(int k) {
            return classifier != null ? classifier.labels().get(k) : token(k);
        }

        /** The position explained when none is chosen: the classifier's read position, or the last token. */
        int defaultPosition(int[] ids) {
            return classifier != null ? classifier.readPosition(ids) : ids.length - 1;
        }

        /** What to explain: {@code target} (a label or next token as the explain command's --target takes it; null: predicted) at {@code position}. */
        TextReport.Target target(int[] ids, int position, String target) {
            if (position < 0 || position >= ids.length) {
                throw new ApiException(ApiException.BAD_REQUEST, "position " + position + " is outside the text [0, " + ids.length + ")");
            }
            if (classifier != null) return new TextReport.Target(position, target == null ? null : classifier.label(target), classifier.labels()::get, true);
            return new TextReport.Target(position, target == null ? null : TextReport.Target.token(tokenizer, target), this::token, false);
        }

        @Override
        public void close() {
            lm.close();
        }
    }

    /** An image classifier with its class names. */
    record Image(Path dir, ModelFamily family, ImageClassifier classifier, List<String> labels) implements LoadedModel {
        @Override
        public void close() {
            classifier.close();
        }
    }
}
