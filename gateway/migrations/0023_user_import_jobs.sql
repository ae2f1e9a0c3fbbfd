-- User import jobs (CreateUserImportJob ... ListUserImportJobs): one row per job, its UserImportJobType members
-- as columns. list_key orders a pool's jobs by creation for ListUserImportJobs' keyset pages. upload_id names
-- the CSV file uploaded to the job's PreSignedUrl (NULL until one is): its bytes are the rows of
-- user_import_chunks with that upload_id, in seq order. An upload is written under a new upload_id and made the
-- job's in one transaction at its end, so a second upload replaces the first whole, and an upload cut short
-- leaves the job as it was. heartbeat_at is when the process running the job last wrote its progress. A job
-- and its file go with their pool (ON DELETE CASCADE).
CREATE TABLE user_import_jobs (
    pool_id            TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    job_id             TEXT NOT NULL,
    list_key           TEXT NOT NULL,
    job_name           TEXT NOT NULL,
    role_arn           TEXT NOT NULL,
    hashing_algorithm  TEXT,
    status             TEXT NOT NULL,
    created_at         DOUBLE PRECISION NOT NULL,
    url_expires_at     DOUBLE PRECISION NOT NULL,
    started_at         DOUBLE PRECISION,
    completed_at       DOUBLE PRECISION,
    imported_users     INTEGER NOT NULL DEFAULT 0,
    skipped_users      INTEGER NOT NULL DEFAULT 0,
    failed_users       INTEGER NOT NULL DEFAULT 0,
    completion_message TEXT,
    upload_id          TEXT,
    upload_bytes       INTEGER NOT NULL DEFAULT 0,
    heartbeat_at       DOUBLE PRECISION,
    PRIMARY KEY (pool_id, job_id)
);
CREATE UNIQUE INDEX user_import_jobs_by_list_key ON user_import_jobs (pool_id, list_key);
-- One running job per pool at most (StartUserImportJob refuses a second): enforced here too, so two starts on
-- two processes cannot both win.
CREATE UNIQUE INDEX user_import_jobs_one_running ON user_import_jobs (pool_id)
    WHERE status IN ('Pending', 'InProgress', 'Stopping');

CREATE TABLE user_import_chunks (
    pool_id   TEXT NOT NULL,
    job_id    TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (pool_id, job_id, upload_id, seq),
    FOREIGN KEY (pool_id, job_id) REFERENCES user_import_jobs (pool_id, job_id) ON DELETE CASCADE
);
