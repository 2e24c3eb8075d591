# SPDX-License-Identifier: MIT
# The plot of a bench run (bench_plot in bench/lib.bash): throughput rows on the left,
# latency rows on the right, each row a pair of horizontal bars, ours above the baseline,
# with ours / baseline at the end. Log scales: the rows span four decades (a lossy WAN's
# MB/s beside the cipher's GB/s; a loopback round trip beside a whole process).
#
#   gnuplot -e "thr='T'; lat='L'; out='X.svg'; nt=N; nl=N; title='...'" bench/plot.gp
#   (out='X.png' draws a PNG instead)
#
# T and L: one row a line, tab-separated: name, ours, baseline (NaN for none), ratio.
n = nt > nl ? nt : nl
# SVG, or PNG when OUT ends in .png (for a viewer without SVG).
if (strlen(out) > 4 && out[strlen(out) - 3:] eq ".png") {
	set terminal pngcairo size 2200, (150 + 28 * n) noenhanced font "sans,10" \
		background "#ffffff"
} else {
	set terminal svg size 2200, (150 + 28 * n) dynamic noenhanced font "sans,11" \
		background "#ffffff"
}
set output out
set datafile separator "\t"
set style fill solid 0.85 border -1
set logscale x
set grid xtics
set ytics nomirror scale 0
set xtics nomirror
set key below horizontal
set lmargin 62
set rmargin 4

set multiplot layout 1, 2 title title

do for [p = 1:2] {
	f = p == 1 ? thr : lat
	k = p == 1 ? nt : nl
	set xlabel (p == 1 ? "MB/s (10^6 bytes/s), higher is better" : \
		"microseconds, lower is better")
	set title (p == 1 ? "throughput" : "latency")
	# The ranges of the panel before would filter what stats sees.
	set xrange [*:*]
	set yrange [*:*]
	if (k > 0) {
		stats f using 2 nooutput
		lo = STATS_min
		hi = STATS_max
		stats f using 3 nooutput
		lo = STATS_min < lo ? STATS_min : lo
		hi = STATS_max > hi ? STATS_max : hi
		x0 = 10 ** floor(log10(lo))
		set xrange [x0 : 10 ** ceil(log10(hi * 3))]
		set yrange [k - 0.5 : -0.5]
		plot f using (x0):0:(x0):2:($0 - 0.38):($0 - 0.02):ytic(1) with boxxyerror \
			lc rgb "#1f77b4" title "ours", \
		     f using (x0):0:(x0):3:($0 + 0.02):($0 + 0.38) with boxxyerror \
			lc rgb "#ff7f0e" title "baseline", \
		     f using (($3 > $2 ? $3 : $2) * 1.15):0:(stringcolumn(4) eq "-" ? "" : \
			"x" . stringcolumn(4)) with labels left notitle
	} else {
		set yrange [0 : 1]
		set xrange [1 : 10]
		set label 1 "no rows" at graph 0.5, 0.5 center
		plot NaN notitle
		unset label 1
	}
}
unset multiplot
