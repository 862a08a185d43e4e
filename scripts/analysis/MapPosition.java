import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
import org.mambalens.xai.data.FashionMnist;
import org.mambalens.xai.data.ImageDataset;
import org.mambalens.xai.data.ImagePreprocessor;
import org.mambalens.xai.data.PlacedFashionMnist;
import org.mambalens.xai.methods.ImageExplainer;
import org.mambalens.xai.methods.ImageExplainer.Method;

import java.nio.file.Path;
import java.util.EnumSet;

/**
 * How much of each method's patch map is the image, and how much is position: over the first N test
 * images, the mean Pearson correlation of an image's patch map with (a) the mean map over all images,
 * (b) the patch's distance to the cls token in scan order (negated: near = high), (c) the image's own
 * foreground share per patch. The bundled placed-Fashion-MNIST pair on its test set (default), or with
 * "fashion-mnist" the 28×28 pair on Fashion-MNIST. Run from the repository root after building:
 *   java --add-modules jdk.incubator.vector -cp cli/target/mambalens.jar scripts/analysis/MapPosition.java [N] [placed|fashion-mnist]
 */
public class MapPosition {
    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 500;
        boolean placed = args.length < 2 || args[1].equals("placed");
        ImageDataset data = placed ? PlacedFashionMnist.test(Path.of(PlacedFashionMnist.BUNDLED_TEST), FashionMnist.DEBIAN)
                : FashionMnist.test(FashionMnist.DEBIAN);
        int side = data.side();
        for (String name : placed ? new String[]{"vim-placed", "vit-placed"} : new String[]{"vim-fashion", "vit-fashion"}) {
            Path dir = Path.of("models", name);
            try (ImageClassifier model = Models.loadImageClassifier(dir)) {
                ImagePreprocessor pre = ImagePreprocessor.of(dir, model);
                int start = ImageExplainer.defaultStartLayer(model.layers()), cls = model.clsPosition();
                double[][][] maps = new double[Method.values().length][n][];
                double[][] foreground = new double[n][];
                int grid = 0;
                for (int i = 0; i < n; i++) {
                    ImageExplainer.Result r = ImageExplainer.explain(model, pre.fromGray(data.pixels(i), side, side), EnumSet.allOf(Method.class), start, -1);
                    grid = r.grid();
                    for (Method m : Method.values()) maps[m.ordinal()][i] = toDouble(r.patches().get(m));
                    foreground[i] = foregroundShare(data.mask(i), side, grid);
                }
                double[] distance = new double[grid * grid];
                for (int p = 0; p < distance.length; p++) {
                    int token = p < cls ? p : p + 1;                  // patch p's position in the token sequence
                    distance[p] = -Math.abs(token - cls);
                }
                System.out.printf("%s (%d images, cls at token %d): mean correlation of the patch map with%n", name, n, cls);
                System.out.println("  method       | mean map | near the cls in scan order | own foreground");
                for (Method m : Method.values()) {
                    double[] mean = new double[grid * grid];
                    for (double[] map : maps[m.ordinal()]) for (int p = 0; p < mean.length; p++) mean[p] += map[p] / n;
                    double a = 0, b = 0, c = 0;
                    for (int i = 0; i < n; i++) {
                        a += pearson(maps[m.ordinal()][i], mean) / n;
                        b += pearson(maps[m.ordinal()][i], distance) / n;
                        c += pearson(maps[m.ordinal()][i], foreground[i]) / n;
                    }
                    System.out.printf("  %-12s | %8.3f | %26.3f | %14.3f%n", m, a, b, c);
                }
            }
        }
    }

    static double[] toDouble(float[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) out[i] = v[i];
        return out;
    }

    /** Share of foreground pixels in each patch, [G·G]. */
    static double[] foregroundShare(boolean[] mask, int size, int grid) {
        int p = size / grid;
        double[] out = new double[grid * grid];
        for (int y = 0; y < size; y++) for (int x = 0; x < size; x++) if (mask[y * size + x]) out[(y / p) * grid + x / p] += 1.0 / (p * p);
        return out;
    }

    static double pearson(double[] a, double[] b) {
        double ma = 0, mb = 0;
        for (int i = 0; i < a.length; i++) {
            ma += a[i] / a.length;
            mb += b[i] / b.length;
        }
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (a[i] - ma) * (b[i] - mb);
            aa += (a[i] - ma) * (a[i] - ma);
            bb += (b[i] - mb) * (b[i] - mb);
        }
        return aa == 0 || bb == 0 ? 0 : ab / Math.sqrt(aa * bb);
    }
}
