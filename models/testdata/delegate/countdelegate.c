// countdelegate: a TFLite external-delegate plugin for imageapid's tests. It
// claims the float32 ADD (and, if asked, RELU) nodes of a graph, computes them
// itself in C, and counts how many node executions it performed, so a test can
// prove that a delegate loaded at run time is really used, and that every
// failure mode falls back cleanly.
//
// Options (key=value, from the model's delegate_options):
//   ops=add|relu|add,relu   node types to claim (default add); others fail create
//   count_file=PATH         on destroy, append the execution count to PATH
//   reject_graph=true       Prepare fails (the interpreter rejects the delegate)
//   claim=none              Prepare claims no node
// Any other key makes create fail, which tests the create-failure path.
//
// Built by the tests with: gcc -shared -fPIC -I<tflite include> countdelegate.c
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorflow/lite/c/common.h"

// Builtin operator codes (TFLite's builtin_ops.h, which the package lacks).
enum { op_add = 0, op_relu = 19 };
// TfLiteFusedActivation values the ADD kernel supports.
enum { act_none = 0, act_relu = 1, act_relu_n1_to_1 = 2, act_relu6 = 3 };

typedef struct {
	TfLiteDelegate base; // must be first: base.data_ points to this struct
	int take_add, take_relu;
	int reject_graph, claim_none;
	char count_file[1024];
	atomic_long executions;
} counting_delegate;

// A tensor produced and consumed inside one partition is not allocated by
// TFLite (no remaining node uses it): the kernel keeps it in own_out.
typedef struct {
	int op, activation, in0, in1, out;
	float *own_in0, *own_in1, *own_out;
} step;

typedef struct {
	counting_delegate* owner;
	int n;
	step steps[];
} kernel;

static int same_dims(const TfLiteIntArray* a, const TfLiteIntArray* b) {
	if (a == NULL || b == NULL || a->size != b->size) return 0;
	for (int i = 0; i < a->size; i++)
		if (a->data[i] != b->data[i]) return 0;
	return 1;
}

static int is_float(TfLiteContext* ctx, int t) { return t >= 0 && ctx->tensors[t].type == kTfLiteFloat32; }

// supported reports whether this delegate computes the node itself.
static int supported(counting_delegate* d, TfLiteContext* ctx, TfLiteNode* node, TfLiteRegistration* reg) {
	if (node->outputs->size != 1 || !is_float(ctx, node->outputs->data[0])) return 0;
	const TfLiteIntArray* out = ctx->tensors[node->outputs->data[0]].dims;
	if (reg->builtin_code == op_add && d->take_add && node->inputs->size == 2) {
		int a = node->inputs->data[0], b = node->inputs->data[1];
		if (!is_float(ctx, a) || !is_float(ctx, b)) return 0;
		// No broadcasting: both operands have the output's shape.
		if (!same_dims(ctx->tensors[a].dims, out) || !same_dims(ctx->tensors[b].dims, out)) return 0;
		int act = node->builtin_data ? *(const int*)node->builtin_data : act_none;
		return act == act_none || act == act_relu || act == act_relu_n1_to_1 || act == act_relu6;
	}
	if (reg->builtin_code == op_relu && d->take_relu && node->inputs->size == 1) {
		int a = node->inputs->data[0];
		return is_float(ctx, a) && same_dims(ctx->tensors[a].dims, out);
	}
	return 0;
}

static size_t elements(const TfLiteIntArray* dims) {
	size_t n = 1;
	for (int i = 0; i < dims->size; i++) n *= (size_t)dims->data[i];
	return n;
}

static void* kernel_init(TfLiteContext* ctx, const char* buffer, size_t length) {
	(void)length;
	const TfLiteDelegateParams* params = (const TfLiteDelegateParams*)buffer;
	int n = params->nodes_to_replace->size;
	kernel* k = calloc(1, sizeof(kernel) + (size_t)n * sizeof(step));
	if (k == NULL) return NULL;
	k->owner = (counting_delegate*)params->delegate->data_;
	k->n = n;
	for (int i = 0; i < n; i++) {
		TfLiteNode* node = NULL;
		TfLiteRegistration* reg = NULL;
		ctx->GetNodeAndRegistration(ctx, params->nodes_to_replace->data[i], &node, &reg);
		step* s = &k->steps[i];
		s->op = reg->builtin_code;
		s->in0 = node->inputs->data[0];
		s->in1 = node->inputs->size > 1 ? node->inputs->data[1] : -1;
		s->out = node->outputs->data[0];
		s->activation = (s->op == op_add && node->builtin_data) ? *(const int*)node->builtin_data : act_none;
		int exported = 0;
		for (int j = 0; j < params->output_tensors->size; j++)
			if (params->output_tensors->data[j] == s->out) exported = 1;
		if (!exported) s->own_out = malloc(elements(ctx->tensors[s->out].dims) * sizeof(float));
		for (int j = 0; j < i; j++) {
			if (k->steps[j].out == s->in0) s->own_in0 = k->steps[j].own_out;
			if (k->steps[j].out == s->in1) s->own_in1 = k->steps[j].own_out;
		}
	}
	return k;
}

static void kernel_free(TfLiteContext* ctx, void* buffer) {
	(void)ctx;
	kernel* k = (kernel*)buffer;
	for (int i = 0; k != NULL && i < k->n; i++) free(k->steps[i].own_out);
	free(k);
}

static TfLiteStatus kernel_prepare(TfLiteContext* ctx, TfLiteNode* node) {
	(void)ctx;
	return node->user_data ? kTfLiteOk : kTfLiteError;
}

static TfLiteStatus kernel_invoke(TfLiteContext* ctx, TfLiteNode* node) {
	kernel* k = (kernel*)node->user_data;
	for (int i = 0; i < k->n; i++) {
		const step* s = &k->steps[i];
		float* out = s->own_out ? s->own_out : ctx->tensors[s->out].data.f;
		const float* a = s->own_in0 ? s->own_in0 : ctx->tensors[s->in0].data.f;
		size_t n = elements(ctx->tensors[s->out].dims);
		if (s->op == op_add) {
			const float* b = s->own_in1 ? s->own_in1 : ctx->tensors[s->in1].data.f;
			float lo = -__builtin_inff(), hi = __builtin_inff();
			if (s->activation == act_relu) lo = 0;
			if (s->activation == act_relu_n1_to_1) lo = -1, hi = 1;
			if (s->activation == act_relu6) lo = 0, hi = 6;
			for (size_t j = 0; j < n; j++) {
				float v = a[j] + b[j];
				out[j] = v < lo ? lo : (v > hi ? hi : v);
			}
		} else {
			for (size_t j = 0; j < n; j++) out[j] = a[j] > 0 ? a[j] : 0;
		}
		atomic_fetch_add(&k->owner->executions, 1);
	}
	return kTfLiteOk;
}

static TfLiteStatus delegate_prepare(TfLiteContext* ctx, TfLiteDelegate* delegate) {
	counting_delegate* d = (counting_delegate*)delegate->data_;
	if (d->reject_graph) {
		ctx->ReportError(ctx, "countdelegate: rejecting the graph as asked (reject_graph=true)");
		return kTfLiteError;
	}
	TfLiteIntArray* plan = NULL;
	if (ctx->GetExecutionPlan(ctx, &plan) != kTfLiteOk) return kTfLiteError;
	TfLiteIntArray* take = malloc(sizeof(int) * (size_t)(plan->size + 1));
	if (take == NULL) return kTfLiteError;
	take->size = 0;
	for (int i = 0; i < plan->size && !d->claim_none; i++) {
		TfLiteNode* node = NULL;
		TfLiteRegistration* reg = NULL;
		if (ctx->GetNodeAndRegistration(ctx, plan->data[i], &node, &reg) != kTfLiteOk) continue;
		if (supported(d, ctx, node, reg)) take->data[take->size++] = plan->data[i];
	}
	TfLiteStatus st = kTfLiteOk;
	if (take->size > 0) {
		TfLiteRegistration reg = {0};
		reg.init = kernel_init;
		reg.free = kernel_free;
		reg.prepare = kernel_prepare;
		reg.invoke = kernel_invoke;
		reg.custom_name = "countdelegate";
		reg.version = 1;
		st = ctx->ReplaceNodeSubsetsWithDelegateKernels(ctx, reg, take, delegate);
	}
	free(take);
	return st;
}

static int fail(void (*report_error)(const char*), const char* msg) {
	if (report_error) report_error(msg);
	return 0;
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                              void (*report_error)(const char*)) {
	counting_delegate* d = calloc(1, sizeof(counting_delegate));
	if (d == NULL) return NULL;
	d->take_add = 1;
	char msg[512];
	for (size_t i = 0; i < n; i++) {
		const char* k = keys[i];
		const char* v = values[i];
		if (strcmp(k, "ops") == 0) {
			d->take_add = strstr(v, "add") != NULL;
			d->take_relu = strstr(v, "relu") != NULL;
			if (!d->take_add && !d->take_relu) {
				snprintf(msg, sizeof msg, "countdelegate: ops=%s: only add and relu are implemented", v);
				goto bad;
			}
		} else if (strcmp(k, "count_file") == 0) {
			snprintf(d->count_file, sizeof d->count_file, "%s", v);
		} else if (strcmp(k, "reject_graph") == 0) {
			d->reject_graph = strcmp(v, "true") == 0;
		} else if (strcmp(k, "claim") == 0) {
			d->claim_none = strcmp(v, "none") == 0;
		} else {
			snprintf(msg, sizeof msg, "countdelegate: unknown option %s", k);
			goto bad;
		}
	}
	d->base.data_ = d;
	d->base.Prepare = delegate_prepare;
	return &d->base;
bad:
	fail(report_error, msg);
	free(d);
	return NULL;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) {
	if (delegate == NULL) return;
	counting_delegate* d = (counting_delegate*)delegate->data_;
	if (d->count_file[0]) {
		FILE* f = fopen(d->count_file, "a");
		if (f) {
			fprintf(f, "%ld\n", (long)atomic_load(&d->executions));
			fclose(f);
		}
	}
	free(d);
}
