# git init/add/commit/log on a generated tree; authors and dates come from the environment, so
# commit ids are the same on every run.
set -e
git init -q -b main repo
cp -r tree/. repo/
cd repo
git add -A
git commit -q -m "initial import"
sed -i 's/line 1$/line one/' dir3/file7.txt
git rm -q dir1/file2.txt
git commit -q -a -m "second commit"
git log --format='%H %an <%ae> %ad %s' --date=iso
git diff --stat HEAD~1 HEAD
git rev-list --count HEAD
git ls-files | wc -l
echo "git done"
