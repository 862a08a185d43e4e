package org.mambalens.xai.render;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.List;

/**
 * Line charts drawn without text (so no font is needed on a headless machine): the caption, axis
 * labels and legend go into the HTML around the image, in the colours of {@link #COLOURS}.
 */
public final class Charts {
    /** Series colours, in order, as CSS hex. */
    public static final String[] COLOURS = {"#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e"};

    private Charts() {
    }

    /**
     * Series of y values in [0, yMax] over x in [0, xMax] on a grid of 10 × 10 cells.
     *
     * @param dashed per series, whether it is drawn dashed
     */
    public static BufferedImage lines(double[] x, List<double[]> series, List<Boolean> dashed, double xMax, double yMax, int width, int height) {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        int left = 10, right = width - 10, top = 10, bottom = height - 10;
        g.setColor(new Color(0xe0e0e0));
        for (int k = 0; k <= 10; k++) {
            int gx = left + (right - left) * k / 10, gy = top + (bottom - top) * k / 10;
            g.drawLine(gx, top, gx, bottom);
            g.drawLine(left, gy, right, gy);
        }
        g.setColor(Color.DARK_GRAY);
        g.drawRect(left, top, right - left, bottom - top);
        for (int s = 0; s < series.size(); s++) {
            g.setColor(Color.decode(COLOURS[s % COLOURS.length]));
            g.setStroke(dashed.get(s) ? new BasicStroke(2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 1f, new float[]{6f, 5f}, 0f)
                    : new BasicStroke(2.5f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
            double[] y = series.get(s);
            for (int k = 1; k < x.length; k++) {
                g.drawLine(left + (int) Math.round((right - left) * x[k - 1] / xMax), bottom - (int) Math.round((bottom - top) * y[k - 1] / yMax),
                        left + (int) Math.round((right - left) * x[k] / xMax), bottom - (int) Math.round((bottom - top) * y[k] / yMax));
            }
        }
        g.dispose();
        return img;
    }
}
