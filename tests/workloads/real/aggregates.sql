-- 100 000 rows from a recursive CTE, an index, and aggregates over them.
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, (x * 7919) % 1000, printf('row%06d-%d', x, (x * 31) % 17) FROM c;
CREATE INDEX t_k ON t(k);
SELECT count(*), sum(k), min(v), max(v) FROM t;
SELECT k, count(*), sum(id) FROM t GROUP BY k ORDER BY sum(id) DESC, k LIMIT 5;
SELECT round(avg(length(v)), 4), count(DISTINCT substr(v, -2)) FROM t WHERE k BETWEEN 100 AND 200;
SELECT a.k, count(*) FROM t AS a JOIN t AS b ON a.id = b.id + 1000 WHERE a.k < 3 GROUP BY a.k ORDER BY a.k;
