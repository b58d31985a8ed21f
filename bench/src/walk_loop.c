/* The owners walk read by a plain C loop, for the bench's comparison (issue
 * 15): opens a pinned BPF iterator REPS + 1 times (the first is a warm-up),
 * reads each to EOF with read(2) into a 64 KiB buffer, and prints the median
 * milliseconds of one open-read-close and the bytes one read gave. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static char buf[64 << 10];
	long bytes = 0;
	double *times;
	int reps;

	if (argc != 3 || (reps = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: %s PINNED_ITERATOR REPS\n", argv[0]);
		return 2;
	}
	times = calloc(reps, sizeof(*times));
	if (!times)
		return 1;
	for (int i = -1; i < reps; i++) {
		double start = now_ms();
		int fd = open(argv[1], O_RDONLY);
		long total = 0;
		ssize_t n;

		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += n;
		if (n < 0) {
			perror("read");
			return 1;
		}
		close(fd);
		if (i >= 0)
			times[i] = now_ms() - start;
		bytes = total;
	}
	qsort(times, reps, sizeof(*times), by_value);
	printf("%.4f %ld\n", times[reps / 2], bytes);
	return 0;
}
