// hog.h: a C view of OpenCV's HOG people detector, with the per-box SVM
// scores that gocv does not return. Exceptions never cross into Go.
#ifndef IMAGEAPID_CAMERA_HOG_H
#define IMAGEAPID_CAMERA_HOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
	int x, y, w, h;
	double score;
} camera_hog_box;

typedef void *camera_hog;

camera_hog camera_hog_new(void);
void camera_hog_free(camera_hog h);

// camera_hog_detect runs detectMultiScale on img (a cv::Mat*, BGR or gray) and
// writes up to max boxes to out. It returns the number of boxes found (which may
// exceed max), or -1 with a message in err when OpenCV throws.
int camera_hog_detect(camera_hog h, void *img, double hit_threshold, int win_stride, double scale,
                      double group_threshold, camera_hog_box *out, int max, char *err, int errlen);

#ifdef __cplusplus
}
#endif

#endif
