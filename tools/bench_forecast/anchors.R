# R anchors for make bench-forecast: forecast::snaive() and stlf() on the same
# regular series and the same five daily origins as us-bench-forecast
# (horizon and season 288, MASE scaled by the in-sample seasonal-naive error
# of the training part, 95% coverage, seconds per stlf() fit + forecast).
suppressPackageStartupMessages(library(forecast))
H <- 288
cat("| series | R snaive MASE | R stlf MASE | R stlf 95% cover | stlf s/fit |\n|---|---:|---:|---:|---:|\n")
tot <- c(0, 0, 0, 0); ns <- 0
for (f in commandArgs(TRUE)) {
  y <- scan(f, quiet = TRUE); n <- length(y)
  m <- c(0, 0); cov <- 0; secs <- 0
  for (k in 5:1) {
    o <- n - k * H
    tr <- ts(y[1:o], frequency = H)
    a <- y[(o + 1):(o + H)]
    sc <- mean(abs(diff(y[1:o], lag = H)))
    f1 <- snaive(tr, h = H)
    t0 <- proc.time()[["elapsed"]]
    f2 <- stlf(tr, h = H, level = 95)
    secs <- secs + proc.time()[["elapsed"]] - t0
    m <- m + c(mean(abs(a - f1$mean)), mean(abs(a - f2$mean))) / sc / 5
    cov <- cov + mean(a >= f2$lower[, 1] & a <= f2$upper[, 1]) / 5
  }
  cat(sprintf("| %s | %.3f | %.3f | %.1f%% | %.3f |\n", sub("\\.txt$", "", basename(f)),
              m[1], m[2], 100 * cov, secs / 5))
  tot <- tot + c(m, cov, secs / 5); ns <- ns + 1
}
tot <- tot / ns
cat(sprintf("| **mean** | %.3f | %.3f | %.1f%% | %.3f |\n", tot[1], tot[2], 100 * tot[3], tot[4]))
