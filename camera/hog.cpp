#include "hog.h"

#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/objdetect.hpp>

camera_hog camera_hog_new(void) {
	try {
		cv::HOGDescriptor *h = new cv::HOGDescriptor();
		// getDefaultPeopleDetector returns a vector by value: setSVMDetector copies it.
		h->setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
		return h;
	} catch (...) {
		return nullptr;
	}
}

void camera_hog_free(camera_hog h) { delete static_cast<cv::HOGDescriptor *>(h); }

int camera_hog_detect(camera_hog h, void *img, double hit_threshold, int win_stride, double scale,
                      double group_threshold, camera_hog_box *out, int max, char *err, int errlen) {
	try {
		std::vector<cv::Rect> found;
		std::vector<double> weights;
		static_cast<cv::HOGDescriptor *>(h)->detectMultiScale(
		    *static_cast<cv::Mat *>(img), found, weights, hit_threshold, cv::Size(win_stride, win_stride),
		    cv::Size(), scale, group_threshold, false);
		int n = static_cast<int>(found.size());
		for (int i = 0; i < n && i < max; i++) {
			out[i].x = found[i].x;
			out[i].y = found[i].y;
			out[i].w = found[i].width;
			out[i].h = found[i].height;
			out[i].score = i < static_cast<int>(weights.size()) ? weights[i] : 0;
		}
		return n;
	} catch (const std::exception &e) {
		std::strncpy(err, e.what(), errlen - 1);
		err[errlen - 1] = 0;
		return -1;
	}
}
