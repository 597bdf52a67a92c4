/*
 * job: one unit of claimed work handed from the writer to the dispatcher:
 * either a task attempt or a webhook delivery. A job owns what it carries.
 */
#ifndef AQ_JOB_H
#define AQ_JOB_H

#include "store.h"
#include "task.h"

enum job_kind { JOB_TASK, JOB_WEBHOOK };

struct job {
    enum job_kind kind;
    struct task *task;           /* JOB_TASK: the claimed task */
    struct webhook_msg *webhook; /* JOB_WEBHOOK: the claimed message */
    struct job *next;
};

/* Frees a list of jobs and what they carry. */
void job_list_free(struct job *jobs);

#endif
