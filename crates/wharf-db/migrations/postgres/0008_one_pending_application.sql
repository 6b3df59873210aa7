-- At most one pending application per organization and program, even when two owners
-- apply at the same moment.
CREATE UNIQUE INDEX program_applications_one_pending
    ON program_applications (namespace, program) WHERE status = 'pending';
